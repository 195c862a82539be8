"""Benchmark: `make run` start-up time, and the slice's request rate against a bare route.

Starts the real launcher (`python -m cqdev run`, as `make run` does) on free ports,
measures the time until `/readyz` answers 200 with the sandbox roster loaded, then loads
two routes of the same gateway from this machine, one after the other:

- `GET /healthz` — no I/O (the bare FastAPI route: the machine's ceiling);
- `GET /api/v1/violations?vehicle_id=<张伟's car>` — the slice: token check, gRPC to the
  query service, the access rule and the read-model query in PostgreSQL.

It prints req/s and latency percentiles for each, and their ratio (the figure that
compares across machines). The load generator is `wrk` (one thread) when it is installed
(Debian package `wrk`), else asyncio + httpx in this process — a much slower client, so
its absolute numbers are only a floor. Either runs on the same 2-core machine as the
cluster, and every loop is bounded in time.

    .venv/bin/python bench/cluster_slice.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from cqdev.stack import free_port
from cqregistry.domain.roster import sandbox_roster

# `python bench/cluster_slice.py` puts bench/ on sys.path, not the repo root; mypy (run from
# the root) resolves `bench.benchlib` as it is written here
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import ROOT, load, load_with_wrk, report


async def measure(gateway: str, seconds: float, concurrency: int) -> None:
    vehicle_id = str(sandbox_roster(date.today()).vehicle("渝A12345").vehicle_id)
    async with httpx.AsyncClient(timeout=10) as client:
        login = await client.post(
            f"{gateway}/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"}
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        listed = await client.get(
            f"{gateway}/api/v1/violations", params={"vehicle_id": vehicle_id}, headers=headers
        )
        listed.raise_for_status()
        print(f"slice returns {len(listed.json()['violations'])} violations of 渝A12345")
    slice_url = f"{gateway}/api/v1/violations?vehicle_id={vehicle_id}"
    if shutil.which("wrk"):
        print(f"load generator: wrk, 1 thread, {concurrency} connections, {seconds:.0f} s each")
        bare = load_with_wrk(f"{gateway}/healthz", {}, seconds=seconds, concurrency=concurrency)
        slice_ = load_with_wrk(slice_url, headers, seconds=seconds, concurrency=concurrency)
    else:
        print(
            f"load generator: httpx (wrk not installed), {concurrency} workers, {seconds:.0f} s each"
        )
        bare = await load(f"{gateway}/healthz", {}, seconds=seconds, concurrency=concurrency)
        slice_ = await load(slice_url, headers, seconds=seconds, concurrency=concurrency)
    report("GET /healthz (bare route)", bare)
    report("GET /api/v1/violations", slice_)
    print(f"slice / bare throughput ratio: {slice_.rate / bare.rate:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    env = dict(os.environ)
    gateway_port = free_port()
    env["GATEWAY_PORT"] = str(gateway_port)
    env["FAKE_ALIPAY_PORT"] = str(free_port())
    env.setdefault("LOG_LEVEL", "WARNING")
    for name in ("QUERY", "ADJUDICATION", "PAYMENT", "FOLLOW", "REGISTRY"):
        env[f"{name}_SERVICE_ADDR"] = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        ready_file = Path(tmp) / "ready.json"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cqdev", "run", "--ready-file", str(ready_file)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = t0 + 300
            while not ready_file.exists():
                if proc.poll() is not None or time.perf_counter() > deadline:
                    print("cluster did not become ready (see .local/logs/)", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            gateway = json.loads(ready_file.read_text())["gateway_url"]
            ready = httpx.get(f"{gateway}/readyz", timeout=10)
            startup = time.perf_counter() - t0
            print(f"make run -> /readyz {ready.status_code}: {startup:.1f} s (sandbox loaded)")
            if ready.status_code != 200:
                return 1
            asyncio.run(measure(gateway, args.seconds, args.concurrency))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
