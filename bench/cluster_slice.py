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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from cqdev.stack import free_port
from cqregistry.roster import sandbox_roster

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def load(
    url: str, headers: dict[str, str], *, seconds: float, concurrency: int
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        for _ in range(20):  # warm up connections and caches
            await client.get(url, headers=headers)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await client.get(url, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, latencies)


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNIT_MS[unit]


def load_with_wrk(
    url: str, headers: dict[str, str], *, seconds: float, concurrency: int
) -> LoadResult:
    """Drive ``url`` with wrk; latencies are wrk's percentiles (50, 75, 90, 99)."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pcts = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, flags=re.M))
    # a stand-in distribution that reproduces wrk's reported percentiles
    latencies = [_ms(pcts["50"])] * 50 + [_ms(pcts["75"])] * 25 + [_ms(pcts["90"])] * 15
    latencies += [_ms(pcts["99"])] * 10
    return LoadResult(requests, int(errors.group(1)) if errors else 0, seconds, latencies)


def report(name: str, r: LoadResult) -> None:
    print(
        f"{name:<28} {r.rate:8.0f} req/s  p50 {r.pct(0.50):6.1f} ms  p99 {r.pct(0.99):6.1f} ms"
        f"  errors {r.errors}/{r.requests}"
    )


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
