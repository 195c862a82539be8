"""The launcher behind `make run`, driven with tiny fake services (real ones come later).

Each fake service serves the standard gRPC health service and starts a grandchild
(``sleep``) so the tests prove that stopping reaches whole process trees.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from cqcommon.alipay import AlipayClient
from cqdev import cluster
from cqdev.fake_alipay import APP_ID, ensure_sandbox_keys
from cqdev.stack import free_port

pytestmark = pytest.mark.integration

FAKE_SERVICE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    port, crash_after = int(sys.argv[1]), float(sys.argv[2])
    grandchild = subprocess.Popen(["sleep", "300"])  # must die with us
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("serving", port, "grandchild", grandchild.pid, flush=True)
    print("alipay", os.environ.get("ALIPAY_GATEWAY_URL", "-"),
          os.environ.get("ALIPAY_NOTIFY_URL", "-"), flush=True)
    if crash_after > 0:
        time.sleep(crash_after)
        sys.exit(3)
    server.wait_for_termination()
    """
)

FAKE_GATEWAY = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)

LAUNCHER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from cqdev import cluster
    from cqdev.stack import Stack

    spec = json.loads(Path(sys.argv[1]).read_text())
    services = [
        cluster.ChildSpec(s["name"], tuple(s["argv"]), cluster.GrpcReady(s["addr"]))
        for s in spec["services"]
    ]
    gateway = cluster.ChildSpec("gateway", tuple(spec["gateway_argv"]),
                                cluster.HttpReady(spec["gateway_url"] + "/readyz"))
    # Env vars make the stack reuse "external" components without touching them.
    environ = {"DATABASE_URL": "postgresql://x@127.0.0.1:1/none",
               "REDIS_URL": "redis://127.0.0.1:1/0", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    config = cluster.ClusterConfig(
        setup=[(n, tuple(a)) for n, a in spec["setup"]],
        after_ready=[(n, tuple(a)) for n, a in spec.get("after_ready", [])],
        services=services,
        gateway=gateway,
        gateway_url=spec["gateway_url"],
        ports=[(p, v) for p, v in spec["ports"]],
        port_wait_s=spec.get("port_wait_s", 0.0),
        log_dir=Path(spec["log_dir"]),
        ready_timeout_s=spec["ready_timeout_s"],
        stop_grace_s=3.0,
        ready_file=Path(spec["ready_file"]),
        stack_factory=lambda: Stack(environ=environ, ephemeral=True),
        fake_alipay=cluster.FakeAlipaySpec(
            port=spec["fake_alipay"]["port"],
            keys_dir=Path(spec["fake_alipay"]["keys_dir"]),
            notify_url=spec["gateway_url"] + cluster.ALIPAY_NOTIFY_PATH,
        ) if spec.get("fake_alipay") else None,
    )
    sys.exit(cluster.run(config))
    """
)


def _launch(
    tmp_path: Path,
    *,
    crash_after: float = 0.0,
    setup_fails: bool = False,
    ready_timeout_s: float = 60.0,
    never_ready: bool = False,
    busy_port: int | None = None,
    fake_alipay_port: int | None = None,
    loader_exit: int | None = None,
) -> tuple[subprocess.Popen[str], Path, Path]:
    (tmp_path / "svc.py").write_text(FAKE_SERVICE)
    (tmp_path / "gw.py").write_text(FAKE_GATEWAY)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    py = sys.executable
    services = []
    for i, name in enumerate(("alpha", "beta")):
        port = free_port()
        crash = crash_after if i == 1 else 0.0
        argv = [py, str(tmp_path / "svc.py"), str(port), str(crash)]
        if never_ready and i == 1:
            argv = [py, "-c", "import time; time.sleep(300)"]
        services.append({"name": name, "argv": argv, "addr": f"127.0.0.1:{port}"})
    gw_port = free_port()
    marker = tmp_path / "setup-order.txt"
    setup = [
        [f"migrate-{n}", [py, "-c", f"open({str(marker)!r}, 'a').write('{n}\\n')"]]
        for n in ("registry", "adjudication")
    ]
    if setup_fails:
        setup.append(["load-sandbox", [py, "-c", "import sys; print('boom'); sys.exit(4)"]])
    ports = [[gw_port, "GATEWAY_PORT"]]
    if busy_port is not None:
        ports.append([busy_port, "QUERY_SERVICE_ADDR"])
    ready_file = tmp_path / "ready.json"
    spec = {
        "services": services,
        "gateway_argv": [py, str(tmp_path / "gw.py"), str(gw_port)],
        "gateway_url": f"http://127.0.0.1:{gw_port}",
        "setup": setup,
        "ports": ports,
        "log_dir": str(tmp_path / "logs"),
        "ready_timeout_s": ready_timeout_s,
        "ready_file": str(ready_file),
    }
    if loader_exit is not None:
        # like the sandbox loader: started once every service is ready, must exit 0
        code = f"import sys, time; time.sleep(0.2); print('loaded'); sys.exit({loader_exit})"
        spec["after_ready"] = [["load-sandbox", [py, "-c", code]]]
    if fake_alipay_port is not None:
        spec["fake_alipay"] = {"port": fake_alipay_port, "keys_dir": str(tmp_path / "keys")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [py, str(tmp_path / "launcher.py"), str(tmp_path / "spec.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, ready_file, marker


def _wait_ready(
    proc: subprocess.Popen[str], ready_file: Path, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not ready_file.exists():
        if proc.poll() is not None:
            pytest.fail(f"launcher exited {proc.returncode}:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"not ready in {timeout_s}s:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    data: dict[str, Any] = json.loads(ready_file.read_text())
    return data


def _descendants(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    alive = [p for p in pids if psutil.pid_exists(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in pids if psutil.pid_exists(p)]
    assert not alive, f"orphans left behind: {alive}"


def test_ready_then_sigterm_leaves_no_process(tmp_path: Path) -> None:
    proc, ready_file, marker = _launch(tmp_path)
    info = _wait_ready(proc, ready_file)
    assert set(info["pids"]) == {"alpha", "beta", "gateway"}
    assert info["gateway_url"].startswith("http://127.0.0.1:")
    assert info["docs_url"].endswith("/docs")
    # the benchmarks count RPCs and events from every process's own metrics endpoint
    assert info["metrics_urls"]["gateway"] == info["gateway_url"] + "/metrics"
    assert marker.read_text() == "registry\nadjudication\n"  # setup ran, in order
    everything = _descendants(proc.pid)  # services, the gateway and their grandchildren
    assert len(everything) >= 5
    assert all(psutil.pid_exists(p) for p in everything)

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "cluster ready in" in out and "sandbox:2088000000000001" in out
    _assert_all_gone(everything)
    assert not ready_file.exists()
    assert (tmp_path / "logs" / "alpha.log").read_text().startswith("serving")


def test_the_loader_runs_once_services_are_ready_and_the_phases_are_printed(
    tmp_path: Path,
) -> None:
    proc, ready_file, _ = _launch(tmp_path, loader_exit=0)
    info = _wait_ready(proc, ready_file)
    assert (tmp_path / "logs" / "load-sandbox.log").read_text() == "loaded\n"
    phases = [p["phase"] for p in info["phases"]]
    assert "launcher (interpreter, imports)" in phases
    assert "stack (PostgreSQL, Redis, Kafka)" in phases
    assert {"alpha: start → gRPC SERVING", "beta: start → gRPC SERVING"} <= set(phases)
    assert "gateway: start → /readyz 200" in phases
    # the loader starts only once both services answer SERVING
    began = {p["phase"]: p["began_s"] for p in info["phases"]}
    ended = {p["phase"]: p["ended_s"] for p in info["phases"]}
    assert began["load-sandbox"] >= max(
        ended["alpha: start → gRPC SERVING"], ended["beta: start → gRPC SERVING"]
    )
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "where the start went" in out
    for phase in phases:  # one line per phase
        assert sum(line.strip().startswith(phase) for line in out.splitlines()) == 1, phase


def test_a_failing_loader_is_reported_and_stops_the_cluster(tmp_path: Path) -> None:
    proc, _, _ = _launch(tmp_path, loader_exit=5)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "failed with exit code 5" in out and "loaded" in out


def test_sigint_like_ctrl_c_also_stops_everything(tmp_path: Path) -> None:
    proc, ready_file, _ = _launch(tmp_path)
    _wait_ready(proc, ready_file)
    everything = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    _assert_all_gone(everything)


def test_launcher_killed_hard_still_leaves_no_orphan(tmp_path: Path) -> None:
    # SIGKILL gives the launcher no chance to clean up: the parent-death signal must.
    proc, ready_file, _ = _launch(tmp_path)
    _wait_ready(proc, ready_file)
    direct_children = [c.pid for c in psutil.Process(proc.pid).children()]
    grandchildren = set(_descendants(proc.pid)) - set(direct_children)
    proc.kill()
    proc.communicate(timeout=30)
    try:
        _assert_all_gone(direct_children)
    finally:
        # The fake services' own children have no parent-death signal of ours (a real
        # service must stop its own children): remove them so the test leaves nothing.
        for pid in grandchildren:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def test_a_crashing_child_stops_the_cluster_with_an_error(tmp_path: Path) -> None:
    proc, _, _ = _launch(tmp_path, crash_after=1.0)
    deadline = time.monotonic() + 60
    everything: set[int] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            everything.update(_descendants(proc.pid))
        except psutil.Error:
            break
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "beta" in out and "exited unexpectedly with code 3" in out
    _assert_all_gone(sorted(everything))


def test_failing_setup_command_is_reported(tmp_path: Path) -> None:
    proc, _, _ = _launch(tmp_path, setup_fails=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "exit code 4" in out and "boom" in out


def test_a_child_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    proc, _, _ = _launch(tmp_path, never_ready=True, ready_timeout_s=3)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "beta not ready after 3s" in out


def test_a_busy_port_fails_naming_the_env_var(tmp_path: Path) -> None:
    """(after ``port_wait_s``: 0 here; ``test_stack`` shows a port freed meanwhile is taken)"""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc, _, _ = _launch(tmp_path, busy_port=port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in out and "QUERY_SERVICE_ADDR" in out


def test_default_config_uses_the_documented_commands_and_ports() -> None:
    config = cluster.default_config(
        {"QUERY_SERVICE_ADDR": "127.0.0.1:6001", "GATEWAY_PORT": "8123"}
    )
    argvs = [spec.argv[1:] for spec in config.services]
    assert argvs == [
        ("-m", f"cq{n}", "run")
        for n in ("registry", "adjudication", "payment", "follow", "query", "jobs")
    ]
    assert config.gateway.argv[1:] == ("-m", "cqgateway", "serve")
    assert config.gateway_url == "http://127.0.0.1:8123"
    assert (6001, "QUERY_SERVICE_ADDR") in config.ports
    assert (50055, "REGISTRY_SERVICE_ADDR") in config.ports
    # the launcher migrates every schema itself (no process per service), in this order
    assert config.setup == []
    assert [schema for schema, _ in config.migrations] == [
        "registry",
        "adjudication",
        "payment",
        "follow",
        "query",
        "jobs",
        "gateway",
    ]
    assert all(
        (folder / "0001").parent == folder and folder.is_dir() for _, folder in config.migrations
    )
    assert cluster.migration_targets() == config.migrations
    # the sandbox loader talks to the services, so it runs once they are ready
    assert [(name, argv[1:]) for name, argv in config.after_ready] == [
        ("load-sandbox", ("-m", "cqregistry", "load-sandbox"))
    ]
    # sandbox mode (the default): the fake Alipay on 8010, its settings for every child
    assert config.fake_alipay is not None
    assert (config.fake_alipay.port, config.fake_alipay.url) == (8010, "http://127.0.0.1:8010")
    assert config.fake_alipay.notify_url == "http://127.0.0.1:8123/api/v1/alipay/notify"
    assert (8010, "FAKE_ALIPAY_PORT") in config.ports
    assert config.fake_alipay.child().argv[1:4] == ("-m", "cqdev", "fake-alipay")


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE"])
def test_outside_sandbox_mode_no_fake_alipay_is_started(value: str) -> None:
    config = cluster.default_config({"SANDBOX_MODE": value, "FAKE_ALIPAY_PORT": "8099"})
    assert config.fake_alipay is None
    assert all(var != "FAKE_ALIPAY_PORT" for _, var in config.ports)


def test_fake_alipay_env_points_every_child_at_the_fake(tmp_path: Path) -> None:
    spec = cluster.FakeAlipaySpec(
        port=8011,
        keys_dir=tmp_path / "keys",
        notify_url="http://127.0.0.1:8000/api/v1/alipay/notify",
    )
    env = spec.env()
    assert env["ALIPAY_GATEWAY_URL"] == "http://127.0.0.1:8011/gateway.do"
    assert env["ALIPAY_NOTIFY_URL"] == "http://127.0.0.1:8000/api/v1/alipay/notify"
    assert env["ALIPAY_APP_ID"] and env["ALIPAY_SELLER_ID"]
    assert "PRIVATE KEY" in env["ALIPAY_APP_PRIVATE_KEY_PEM"]
    assert "PUBLIC KEY" in env["ALIPAY_PUBLIC_KEY_PEM"]
    assert spec.env() == env  # the keys are made once and reused
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "keys").iterdir())


async def test_sandbox_launch_starts_the_fake_alipay_first_with_its_settings(
    tmp_path: Path,
) -> None:
    fake_port = free_port()
    proc, ready_file, _ = _launch(tmp_path, fake_alipay_port=fake_port)
    try:
        info = _wait_ready(proc, ready_file)
        assert info["fake_alipay_url"] == f"http://127.0.0.1:{fake_port}"
        assert set(info["pids"]) == {"fake-alipay", "alpha", "beta", "gateway"}
        everything = _descendants(proc.pid)
        alpha_log = (tmp_path / "logs" / "alpha.log").read_text()
        gateway = f"http://127.0.0.1:{fake_port}/gateway.do"
        assert f"alipay {gateway} {info['gateway_url']}/api/v1/alipay/notify" in alpha_log
        # The running fake holds the very keys the children were given.
        keys = ensure_sandbox_keys(tmp_path / "keys")
        async with httpx.AsyncClient() as http:
            client = AlipayClient(
                gateway_url=gateway,
                app_id=APP_ID,
                app_private_key_pem=keys.app_private_key_pem,
                alipay_public_key_pem=keys.alipay_public_key_pem,
                http=http,
            )
            trade_no = await client.trade_create(
                "T" + str(fake_port), 100, "罚款", "2088000000000001"
            )
            paid = await http.post(
                f"http://127.0.0.1:{fake_port}/sandbox/alipay/trades/{trade_no}/pay"
            )
            assert paid.status_code == 200 and paid.json()["trade_status"] == "TRADE_SUCCESS"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"fake Alipay   http://127.0.0.1:{fake_port}" in out
    assert f"curl -X POST http://127.0.0.1:{fake_port}/sandbox/alipay/trades/<trade_no>/pay" in out
    _assert_all_gone(everything)
