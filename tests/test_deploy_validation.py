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

pytestmark = pytest.mark.skipif(
    not (TOOLS / "bin" / "checkov").exists(),
    reason="the deploy validators are not installed: run `make check-deploy` (make check does)",
)


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


@pytest.fixture
def query_deployment(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [
        d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "query"
    ]
    return copy.deepcopy(found)


@pytest.fixture(scope="module")
def network_policies(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Written beside each Deployment: checkov wants a NetworkPolicy for every pod."""
    return [d for d in rendered if d["kind"] == "NetworkPolicy"]


def _write(path: Path, doc: dict[str, Any], network_policies: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all([doc, *network_policies], sort_keys=False), "utf-8")
    return path


def test_the_rendered_deployment_passes(
    query_deployment: dict[str, Any], network_policies: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = _check(_write(tmp_path / "query.yaml", query_deployment, network_policies))
    assert result.returncode == 0, result.stdout + result.stderr


def test_broken_manifests_fail_each_for_its_reason(
    query_deployment: dict[str, Any], network_policies: list[dict[str, Any]], tmp_path: Path
) -> None:
    unknown = copy.deepcopy(query_deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    root = copy.deepcopy(query_deployment)
    root["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False, runAsUser=0)
    unsized = copy.deepcopy(query_deployment)
    del unsized["spec"]["template"]["spec"]["containers"][0]["resources"]
    files = [
        _write(tmp_path / "unknown-field.yaml", unknown, network_policies),
        _write(tmp_path / "as-root.yaml", root, network_policies),
        _write(tmp_path / "no-resources.yaml", unsized, network_policies),
    ]
    result = _check(*files)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # the schema names the stray field; checkov the failed policies, per file
    assert "'livenessProbes' was unexpected" in out
    assert "unknown-field.yaml" in out
    failed_checks: dict[str, set[str]] = {}
    current: str | None = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Check: "):
            current = line.split()[1].rstrip(":")
        elif line.startswith("File: ") and current is not None:
            failed_checks.setdefault(Path(line.split()[1].split(":")[0]).name, set()).add(current)
    # CKV_K8S_23: admission of root containers; CKV_K8S_40: a high UID
    assert {"CKV_K8S_23", "CKV_K8S_40"} <= failed_checks.get("as-root.yaml", set()), out
    # CKV_K8S_10..13: CPU and memory requests and limits
    assert {"CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"} <= failed_checks.get(
        "no-resources.yaml", set()
    ), out
