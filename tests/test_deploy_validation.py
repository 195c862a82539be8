"""The deploy/ validation (``scripts/check_deploy.py``, ``make check-deploy``) really rejects
a bad manifest: a check that passes everything proves nothing.

The production overlay is rendered with the pinned kubectl; its ``query`` Deployment passes
the same entry point ``make check-deploy`` uses (``--k8s FILE``), and three copies, each
broken one way, fail it, each for its own reason:

- an unknown field (the Kubernetes schema, strict);
- a container that runs as root (checkov's policies);
- a container without a resources block (checkov's policies).

The validators live in ``.tools/deploycheck``, made by ``make check-deploy``, which ``make
check`` runs and CI runs before ``make test`` (.ci/run): the tests skip, saying so, only on a
machine where it never ran. ``make test`` does not build it itself because its recipe
belongs to the whole suite; a first ``make check`` (or ``make check-deploy``) does.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "deploycheck"
CHECK = ROOT / "scripts" / "check_deploy.py"

pytestmark = [
    pytest.mark.skipif(
        not (TOOLS / "bin" / "checkov").exists(),
        reason="the deploy validators are not installed: run `make check-deploy` (make check does)",
    ),
    # it starts checkov, a heavy process: out of `make test-unit`, with time for a busy machine
    pytest.mark.slow,
    pytest.mark.timeout(900),
]


def _check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS / "bin" / "python"), str(CHECK), "--k8s", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [str(TOOLS / "bin" / "kubectl"), "kustomize", str(ROOT / "deploy/k8s/overlays/production")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [dict(d) for d in yaml.safe_load_all(rendered) if d]


def _write(path: Path, doc: dict[str, Any], network_policies: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all([doc, *network_policies], sort_keys=False), "utf-8")
    return path


def _failed_checks(out: str) -> dict[str, set[str]]:
    """checkov's compact output: file name -> ids of the checks that failed in it."""
    failed: dict[str, set[str]] = {}
    current: str | None = None
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("Check: "):
            current = line.split()[1].rstrip(":")
        elif line.startswith("File: ") and current is not None:
            failed.setdefault(Path(line.split()[1].split(":")[0]).name, set()).add(current)
    return failed


@pytest.fixture(scope="module")
def checked(
    rendered: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str]:
    """One run of the check over the good Deployment and three broken copies (one checkov
    start-up instead of four: it is most of the time)."""
    tmp = tmp_path_factory.mktemp("deploy-validation")
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    (good,) = [
        d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "query"
    ]
    unknown = copy.deepcopy(good)
    unknown["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    root = copy.deepcopy(good)
    root["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False, runAsUser=0)
    unsized = copy.deepcopy(good)
    del unsized["spec"]["template"]["spec"]["containers"][0]["resources"]
    result = _check(
        _write(tmp / "good.yaml", good, policies),
        _write(tmp / "unknown-field.yaml", unknown, policies),
        _write(tmp / "as-root.yaml", root, policies),
        _write(tmp / "no-resources.yaml", unsized, policies),
    )
    return result.returncode, result.stdout + result.stderr


def test_the_rendered_deployment_passes(checked: tuple[int, str]) -> None:
    _, out = checked
    # the NetworkPolicies are written beside it: checkov wants one for every pod
    assert "good.yaml" not in _failed_checks(out), out
    assert not [line for line in out.splitlines() if "good.yaml did not validate" in line], out


def test_broken_manifests_fail_each_for_its_reason(checked: tuple[int, str]) -> None:
    returncode, out = checked
    assert returncode == 1, out
    # the schema names the stray field
    assert "unknown-field.yaml did not validate" in out, out
    assert "'livenessProbes' was unexpected" in out, out
    failed = _failed_checks(out)
    # CKV_K8S_23: admission of root containers; CKV_K8S_40: a high UID
    assert {"CKV_K8S_23", "CKV_K8S_40"} <= failed.get("as-root.yaml", set()), out
    # CKV_K8S_10..13: CPU and memory requests and limits
    assert {"CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"} <= failed.get(
        "no-resources.yaml", set()
    ), out
