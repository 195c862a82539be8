"""deploy/ cannot run here (no Docker engine, no cluster), so these checks keep the
manifests true to the code: every process is deployed with the command the launcher uses,
on the port its settings default to, probed the way it answers, every environment variable
named is a real setting (a typo would be silently ignored), and the production rules the
schemas and checkov cannot know hold (who may reach what, when the nightly runner starts).

They read the files themselves (the kustomize base, the overlays' Ingress, the compose
file), so they need no renderer; ``tests/test_deploy_validation.py`` and ``make
check-deploy`` validate the rendered overlays.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cqcommon.settings import SIGNING_SECRETS, Settings
from cqdev.cluster import JOBS, MIGRATION_ORDER, SERVICES

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
#: what a deployment keeps in its secret store: the database URL and every signing secret
SECRET_SETTINGS = {"DATABASE_URL", *(name.upper() for name in SIGNING_SECRETS)}
#: the signing secret each process checks at start outside sandbox mode (insecure_secrets)
SIGNS_WITH = {"gateway": "TOKEN_SECRET", "query": "CURSOR_SECRET", "follow": "SMS_CODE_SECRET"}
METRICS_PORT = 9464


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text("utf-8")))


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text("utf-8"))
    return [doc for name in kustomization["resources"] for doc in _docs(K8S_BASE / name)]


def _k8s(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(workload)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "Job", "CronJob")]


# -- compose ------------------------------------------------------------------------------


def test_compose_runs_every_service_as_the_launcher_does(compose: dict[str, Any]) -> None:
    services = compose["services"]
    app_env = services["gateway"]["environment"]
    for spec in SERVICES:
        assert services[spec.name]["command"] == ["python", "-m", spec.module, "run"]
        assert app_env[spec.addr_env] == f"{spec.name}:{spec.default_port}"
    assert services["jobs"]["command"] == ["python", "-m", "cqjobs", "run"]
    assert app_env[JOBS.addr_env] == f"jobs:{JOBS.default_port}"
    assert services["gateway"]["command"] == ["python", "-m", "cqgateway", "serve"]


def test_compose_names_only_real_settings(compose: dict[str, Any]) -> None:
    for name in ("gateway", *(s.name for s in SERVICES), "jobs", "migrate"):
        env = compose["services"][name]["environment"]
        assert set(env) <= SETTING_NAMES, (name, set(env) - SETTING_NAMES)
    env = compose["services"]["gateway"]["environment"]
    assert env["SANDBOX_MODE"] == "false"  # R-SBX-1: no sandbox adapters outside demos
    # outside sandbox mode the services refuse default signing secrets: each must be given
    for name in SECRET_SETTINGS - {"DATABASE_URL"}:
        assert env[name] == f"${{{name}:?set {name}}}", name


def test_compose_migrates_first_and_traces_and_scrapes_every_process(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    migrate = " ".join(services["migrate"]["command"])
    # every schema, in the launcher's order
    modules = [module for _, module in MIGRATION_ORDER]
    positions = [migrate.index(f"python -m {module} migrate") for module in modules]
    assert positions == sorted(positions)
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text("utf-8"))
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    for name in (*(s.name for s in SERVICES), "jobs"):
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["environment"]["METRICS_PORT"] == str(METRICS_PORT)
        assert f"{name}:{METRICS_PORT}" in targets
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    # the gateway serves /metrics on its own port
    assert "METRICS_PORT" not in services["gateway"]["environment"]
    assert "gateway:8000" in targets
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]
    assert any(
        v.startswith("../observability/alerts.yml:") for v in services["prometheus"]["volumes"]
    )
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


# -- kubernetes ----------------------------------------------------------------------------


def test_k8s_deploys_and_probes_every_service(k8s: list[dict[str, Any]]) -> None:
    for spec in SERVICES:
        deployment = _k8s(k8s, "Deployment", spec.name)
        container = _containers(deployment)[0]
        assert container["command"] == ["python", "-m", spec.module, "run"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": spec.default_port, "metrics": METRICS_PORT}
        # the standard gRPC health service (NOT_SERVING while a dependency is down)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == spec.default_port, probe
        assert {"name": "METRICS_PORT", "value": str(METRICS_PORT)} in container["env"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        service = _k8s(k8s, "Service", spec.name)
        assert service["spec"]["ports"][0]["targetPort"] == spec.default_port
    jobs = _containers(_k8s(k8s, "Deployment", "jobs"))[0]
    assert jobs["command"] == ["python", "-m", "cqjobs", "serve"]
    assert jobs["readinessProbe"]["grpc"]["port"] == JOBS.default_port
    gateway = _containers(_k8s(k8s, "Deployment", "gateway"))[0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "METRICS_PORT" not in {e["name"] for e in gateway["env"]}


def test_k8s_names_only_real_settings_and_keeps_secrets_in_secrets(
    k8s: list[dict[str, Any]],
) -> None:
    config = _k8s(k8s, "ConfigMap", "cqtraffic-config")["data"]
    assert set(config) <= SETTING_NAMES, set(config) - SETTING_NAMES
    assert not SECRET_SETTINGS & set(config)
    assert config["SANDBOX_MODE"] == "false"
    secret = _k8s(k8s, "Secret", "cqtraffic-secrets")["stringData"]
    assert set(secret) <= SETTING_NAMES
    assert set(secret) >= SECRET_SETTINGS
    for key in ("ALIPAY_APP_PRIVATE_KEY_PEM", "ALIYUN_ACCESS_KEY_SECRET"):
        assert key in secret and key not in config
    for workload in _workloads(k8s):
        for container in _containers(workload):
            env = container.get("env", [])
            assert {e["name"] for e in env} <= SETTING_NAMES
            refs = [
                e["valueFrom"]["secretKeyRef"]
                for e in env
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            # a required key must be in the Secret; an optional one (a previous secret during
            # a rotation) is added to the secret store only while it is needed
            assert {r["key"] for r in refs if not r.get("optional")} <= set(secret)
            assert {r["key"] for r in refs if r.get("optional")} <= {
                "TOKEN_SECRET_PREVIOUS",
                "CURSOR_SECRET_PREVIOUS",
            }
            # a signing secret never appears as a literal value
            assert not {e["name"] for e in env if "value" in e} & SECRET_SETTINGS
    for name, key in SIGNS_WITH.items():
        env = _containers(_k8s(k8s, "Deployment", name))[0]["env"]
        assert key in {e["name"] for e in env}, name
    # least privilege: only the gateway holds the token key
    for spec in SERVICES:
        env = _containers(_k8s(k8s, "Deployment", spec.name))[0]["env"]
        assert "TOKEN_SECRET" not in {e["name"] for e in env}


def test_k8s_every_pod_is_locked_down_and_sized(k8s: list[dict[str, Any]]) -> None:
    for workload in _workloads(k8s):
        pod = _pod(workload)
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in _containers(workload):
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_k8s_every_deployment_has_a_pdb_and_the_edge_autoscales(
    k8s: list[dict[str, Any]],
) -> None:
    deployments = {d["metadata"]["name"] for d in k8s if d["kind"] == "Deployment"}
    assert deployments == {*(s.name for s in SERVICES), "jobs", "gateway"}
    pdbs = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in k8s
        if d["kind"] == "PodDisruptionBudget"
    }
    assert pdbs == deployments
    hpas = {
        d["spec"]["scaleTargetRef"]["name"]: d
        for d in k8s
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert {"gateway", "query"} <= set(hpas)
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        # the HPA owns the replica count: an apply must not reset it
        assert "replicas" not in _k8s(k8s, "Deployment", name)["spec"]


def test_k8s_nightly_runner_is_a_cronjob_in_the_window(k8s: list[dict[str, Any]]) -> None:
    cron = _k8s(k8s, "CronJob", "nightly-jobs")["spec"]
    assert cron["timeZone"] == "Asia/Shanghai"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["startingDeadlineSeconds"] > 0
    minute, hour, *rest = cron["schedule"].split()
    assert rest == ["*", "*", "*"]
    # R-JOB: the window is 22:00-00:30; start inside it, with room for the night's work
    assert hour == "22" and 0 <= int(minute) < 30
    latest_start_min = int(minute) + cron["startingDeadlineSeconds"] // 60
    assert latest_start_min < 150  # before 00:30
    job = cron["jobTemplate"]["spec"]
    assert int(minute) * 60 + job["activeDeadlineSeconds"] <= 150 * 60
    container = _containers(_k8s(k8s, "CronJob", "nightly-jobs"))[0]
    assert container["command"] == ["python", "-m", "cqjobs", "jobs", "run"]
    assert "--force" not in container["command"]


def test_k8s_migrate_job_runs_every_schema_in_order(k8s: list[dict[str, Any]]) -> None:
    job = _k8s(k8s, "Job", "migrate")
    commands = [c["command"] for c in _containers(job)]
    assert commands == [["python", "-m", module, "migrate"] for _, module in MIGRATION_ORDER]


def test_k8s_network_policy_keeps_grpc_inside_and_ingress_routes_only_the_api(
    k8s: list[dict[str, Any]],
) -> None:
    deny = _k8s(k8s, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny["podSelector"] == {} and "ingress" not in deny
    grpc = _k8s(k8s, "NetworkPolicy", "grpc-from-cqtraffic")["spec"]
    assert grpc["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "grpc-service"}
    (rule,) = grpc["ingress"]
    # pods of this application only: a podSelector without a namespaceSelector
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "cqtraffic"}}}
    ]
    for spec in (*SERVICES, JOBS):
        labels = _k8s(k8s, "Deployment", spec.name)["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "grpc-service", spec.name
    gateway_labels = _k8s(k8s, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    assert gateway_labels["app.kubernetes.io/component"] != "grpc-service"
    ingresses = _docs(DEPLOY / "k8s" / "overlays" / "production" / "ingress.yaml")
    paths = {
        i["metadata"]["name"]: [p["path"] for r in i["spec"]["rules"] for p in r["http"]["paths"]]
        for i in ingresses
    }
    assert paths == {"public": ["/api"], "internal": ["/internal"]}
    classes = {i["metadata"]["name"]: i["spec"]["ingressClassName"] for i in ingresses}
    assert classes["public"] != classes["internal"]
    for ingress in ingresses:
        for r in ingress["spec"]["rules"]:
            for p in r["http"]["paths"]:
                assert p["pathType"] == "Prefix"
                assert p["backend"]["service"]["name"] == "gateway"


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(froms) == 2
    for image in froms:
        assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    assert re.findall(r"^USER (\S+)", text, flags=re.M) == ["10001:10001"]
    assert "HEALTHCHECK" not in re.sub(r"#.*", "", text)
