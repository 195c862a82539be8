"""deploy/ cannot run here (no Docker engine, no cluster), so these checks keep the
manifests true to the code: every service is deployed with the command the launcher
uses, on the port its settings default to, probed the way the service answers, and
every environment variable named is a real setting (a typo would be silently ignored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cqcommon.settings import SIGNING_SECRETS, Settings
from cqdev.cluster import SERVICES

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
#: what a deployment keeps in its secret store: the database URL and every signing secret
SECRET_SETTINGS = {"DATABASE_URL", *(name.upper() for name in SIGNING_SECRETS)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "cqtraffic.yaml").read_text()) if d]


def _k8s(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def test_compose_runs_every_service_as_the_launcher_does(compose: dict[str, Any]) -> None:
    services = compose["services"]
    app_env = services["gateway"]["environment"]
    for spec in SERVICES:
        assert services[spec.name]["command"] == ["python", "-m", spec.module, "run"]
        assert app_env[spec.addr_env] == f"{spec.name}:{spec.default_port}"
    assert services["gateway"]["command"] == ["python", "-m", "cqgateway", "serve"]


def test_compose_names_only_real_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["gateway"]["environment"]
    assert set(env) <= SETTING_NAMES, set(env) - SETTING_NAMES
    assert env["SANDBOX_MODE"] == "false"  # R-SBX-1: no sandbox adapters outside demos
    # outside sandbox mode the services refuse default signing secrets: each must be given
    for name in SECRET_SETTINGS - {"DATABASE_URL"}:
        assert env[name] == f"${{{name}:?set {name}}}", name


def test_k8s_deploys_and_probes_every_service(k8s: list[dict[str, Any]]) -> None:
    for spec in SERVICES:
        container = _k8s(k8s, "Deployment", spec.name)["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", spec.module, "run"]
        assert container["ports"][0]["containerPort"] == spec.default_port
        # the standard gRPC health service (NOT_SERVING while a dependency is down)
        assert container["readinessProbe"]["grpc"]["port"] == spec.default_port
        service = _k8s(k8s, "Service", spec.name)
        assert service["spec"]["ports"][0]["targetPort"] == spec.default_port
    gateway = _k8s(k8s, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_k8s_names_only_real_settings_and_keeps_secrets_in_secrets(
    k8s: list[dict[str, Any]],
) -> None:
    config = _k8s(k8s, "ConfigMap", "cqtraffic-config")["data"]
    assert set(config) <= SETTING_NAMES, set(config) - SETTING_NAMES
    assert not SECRET_SETTINGS & set(config)
    for spec in SERVICES:
        container = _k8s(k8s, "Deployment", spec.name)["spec"]["template"]["spec"]["containers"][0]
        from_secret = {e["name"] for e in container["env"] if "secretKeyRef" in e["valueFrom"]}
        assert from_secret == SECRET_SETTINGS
        assert from_secret <= SETTING_NAMES
