"""Validate deploy/ without Docker or a cluster (``make check-deploy``; CI runs it through
``make check``).

No Docker engine or Kubernetes runs on the development machines, so this checks what
maintained tools can check from the files, with the pinned tools that
``scripts/install_deploy_tools.py`` put in ``.tools/deploycheck``:

1. render every overlay under ``deploy/k8s/overlays`` with ``kubectl kustomize``;
2. ``kubernetes-validate --strict`` each rendered file against the Kubernetes
   ``KUBERNETES_VERSION`` schemas: an unknown or misplaced field fails, not just a wrong type;
3. ``checkov`` (security policy) on the rendered manifests and ``deploy/Dockerfile``: a root
   container, a missing resources block or probe, a writable root filesystem, … fail. A
   skipped check is skipped inline, with its reason, where it applies
   (``checkov.io/skip`` annotations, ``#checkov:skip=`` in the Dockerfile);
4. ``check-jsonschema`` on ``deploy/compose/compose.yaml`` against the compose-spec schema
   it vendors (``vendor.compose-spec``);
5. ``promtool check rules`` on ``deploy/observability/alerts.yml`` (and ``promtool test
   rules`` on its unit tests, ``alerts_test.yml``) and ``promtool check config
   --syntax-only`` on compose's ``prometheus.yml``, when promtool is installed.

``--k8s FILE…`` checks the given rendered manifests only (steps 2 and 3): the test that a
deliberately broken manifest fails uses the same entry point. Exit 0 when everything
passed, 1 otherwise; each step prints its tool's own messages when it fails.

    .tools/deploycheck/bin/python scripts/check_deploy.py [--k8s FILE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = DEPLOY / "k8s" / "overlays"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
PROMETHEUS_CONFIG = DEPLOY / "compose" / "prometheus.yml"
ALERT_RULES = DEPLOY / "observability" / "alerts.yml"
ALERT_TESTS = DEPLOY / "observability" / "alerts_test.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DEFAULT_TOOLS = ROOT / ".tools" / "deploycheck"
#: the Kubernetes release the manifests are written for (CronJob timeZone is GA since
#: 1.27, the gRPC probe since 1.27); the same minor as the pinned kubectl
KUBERNETES_VERSION = "1.33.0"


@dataclass(frozen=True)
class Result:
    """One step: its name, whether it passed, and what the tool said."""

    name: str
    ok: bool
    output: str
    seconds: float


def _run(name: str, argv: Sequence[str], *, env: dict[str, str] | None = None) -> Result:
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    return Result(name, proc.returncode == 0, output, time.perf_counter() - t0)


def render(tools: Path, overlay: Path, out_dir: Path) -> tuple[Result, Path]:
    """``kubectl kustomize overlay`` into ``out_dir/<overlay>.yaml``."""
    target = out_dir / f"{overlay.name}.yaml"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(tools / "bin" / "kubectl"), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        target.write_text(proc.stdout, "utf-8")
    seconds = time.perf_counter() - t0
    return Result(
        f"render {overlay.name}", proc.returncode == 0, proc.stderr.strip(), seconds
    ), target


def k8s_schema(tools: Path, files: Sequence[Path]) -> Result:
    argv = [str(tools / "bin" / "kubernetes-validate"), "--strict", "--quiet", "--no-warn"]
    argv += ["-k", KUBERNETES_VERSION, *map(str, files)]
    return _run(f"kubernetes-validate --strict (Kubernetes {KUBERNETES_VERSION})", argv)


def checkov(tools: Path, k8s_files: Sequence[Path], dockerfile: Path | None) -> Result:
    frameworks = ["kubernetes"] + (["dockerfile"] if dockerfile is not None else [])
    argv = [str(tools / "bin" / "checkov"), "--framework", *frameworks]
    # --skip-download: no call home for guidelines (CI has no network but the registries)
    argv += ["--skip-download", "--compact", "--quiet", "--output", "cli"]
    for path in [*k8s_files, *([dockerfile] if dockerfile is not None else [])]:
        argv += ["-f", str(path)]
    return _run("checkov " + " + ".join(frameworks), argv, env={"BC_SKIP_MAPPING": "TRUE"})


def compose_schema(tools: Path, compose: Path) -> Result:
    argv = [str(tools / "bin" / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    return _run("compose-spec schema", [*argv, str(compose)])


def prometheus(tools: Path) -> list[Result]:
    promtool = tools / "bin" / "promtool"
    if not promtool.exists():
        note = "promtool not installed (no apt here): alert rules and prometheus.yml not checked"
        return [Result("promtool", True, note, 0.0)]
    results = [
        _run(
            "promtool check config (compose)",
            [str(promtool), "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        )
    ]
    if ALERT_RULES.exists():
        results.append(
            _run("promtool check rules", [str(promtool), "check", "rules", str(ALERT_RULES)])
        )
    else:
        results.append(Result("promtool check rules", False, f"{ALERT_RULES} is missing", 0.0))
    if ALERT_TESTS.exists():
        results.append(
            _run("promtool test rules", [str(promtool), "test", "rules", str(ALERT_TESTS)])
        )
    return results


def check_all(tools: Path, out_dir: Path) -> list[Result]:
    overlays = sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())
    results: list[Result] = []
    rendered: list[Path] = []
    for overlay in overlays:
        result, path = render(tools, overlay, out_dir)
        results.append(result)
        if result.ok:
            rendered.append(path)
    if not rendered:
        return results
    # independent tools: run side by side (most of the time is interpreter start-up)
    with ThreadPoolExecutor(max_workers=4) as pool:
        schema = pool.submit(k8s_schema, tools, rendered)
        policy = pool.submit(checkov, tools, rendered, DOCKERFILE)
        compose = pool.submit(compose_schema, tools, COMPOSE)
        rules = pool.submit(prometheus, tools)
        results += [schema.result(), policy.result(), compose.result(), *rules.result()]
    return results


def check_manifests(tools: Path, files: Sequence[Path]) -> list[Result]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        schema = pool.submit(k8s_schema, tools, files)
        policy = pool.submit(checkov, tools, files, None)
        return [schema.result(), policy.result()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=Path, default=DEFAULT_TOOLS, help="validators' dir")
    parser.add_argument("--k8s", type=Path, nargs="+", help="check these rendered manifests only")
    parser.add_argument("--keep", type=Path, help="write the rendered overlays here")
    args = parser.parse_args(argv)
    if not (args.tools / "bin" / "checkov").exists():
        print(f"check-deploy: no validators in {args.tools}: run `make check-deploy`")
        return 2
    t0 = time.perf_counter()
    if args.k8s:
        results = check_manifests(args.tools, args.k8s)
    elif args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = check_all(args.tools, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
            results = check_all(args.tools, Path(tmp))
    for r in results:
        print(f"{'ok    ' if r.ok else 'FAILED'} {r.name} ({r.seconds:.1f} s)")
        if not r.ok or (r.output and r.name == "promtool"):
            print("\n".join("    " + line for line in r.output.splitlines()))
    failed = [r for r in results if not r.ok]
    elapsed = time.perf_counter() - t0
    if failed:
        print(f"check-deploy: {len(failed)} of {len(results)} steps FAILED ({elapsed:.1f} s)")
        return 1
    print(f"check-deploy: all {len(results)} steps ok ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
