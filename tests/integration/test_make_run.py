"""`make run`'s launcher end to end: the whole cluster starts from scratch into its own
database, `/readyz` answers 200, and SIGTERM leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from cqdev.stack import create_database, drop_database, free_port, with_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def launcher_env(test_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """The run's stack, but a database and topic prefix of its own, and free ports."""
    dbname = f"cqrun_{uuid.uuid4().hex[:10]}"
    base_url = test_env["DATABASE_URL"]
    create_database(base_url, dbname)
    env = {**os.environ, **test_env}
    env.update(
        DATABASE_URL=with_database(base_url, dbname),
        KAFKA_TOPIC_PREFIX=f"cqrun-{dbname}.",
        GATEWAY_PORT=str(free_port()),
        FAKE_ALIPAY_PORT=str(free_port()),
        OTEL_EXPORTER="none",
    )
    for name in ("QUERY", "ADJUDICATION", "PAYMENT", "FOLLOW", "REGISTRY", "JOBS"):
        env[f"{name}_SERVICE_ADDR"] = f"127.0.0.1:{free_port()}"
    yield env
    drop_database(base_url, dbname)


def test_make_run_becomes_ready_and_stops_cleanly(
    launcher_env: dict[str, str], tmp_path: Path
) -> None:
    ready_file = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cqdev", "run", "--ready-file", str(ready_file)],
        cwd=ROOT,
        env=launcher_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not ready_file.exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "cluster not ready in 180 s"
            time.sleep(0.5)
        ready = json.loads(ready_file.read_text())
        r = httpx.get(f"{ready['gateway_url']}/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready"
        # every process's own Prometheus endpoint, as the benchmarks read them
        urls = ready["metrics_urls"]
        assert {"registry", "adjudication", "payment", "follow", "query", "gateway"} <= set(urls)
        scraped = httpx.get(urls["adjudication"], timeout=10)
        assert scraped.status_code == 200 and "cqtraffic_grpc_server_handled" in scraped.text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 7  # five services, the job runner and the gateway at least
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        _gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"left behind: {[p.pid for p in alive]}"
        assert not ready_file.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
