"""Measure RSS and CPU of every cluster process, idle and under a small load, for the
resources blocks of ``deploy/k8s`` (requests and limits are written from these figures).

Starts the real launcher (``python -m cqdev run``, as ``make run`` does) through
``bench/benchlib``'s :class:`Cluster` on free ports, in a database of its own
(``cqdeploy_measure``, dropped afterwards), a Redis database index of its own and its own
broker, then samples ``/proc/<pid>`` of each child (no psutil: it is not a project
dependency, and /proc says the same on Linux):

1. idle for ``--idle`` seconds after ready;
2. under load for ``--seconds``: wrk (or the httpx fallback) on the slice
   ``GET /api/v1/violations`` with a sandbox user's token, ``--concurrency`` connections;
3. the nightly runner once (``python -m cqjobs jobs run --force``) on the sandbox data,
   sampled the same way (the CronJob's pod).

It prints, per process: RSS at the end of idle, the highest RSS seen, and CPU in millicores
(CPU seconds per wall second x 1000) idle and under load. Figures are printed, never
asserted; the machine is shared, so note ``uptime`` with them (printed first).

    .venv/bin/python scripts/measure_deploy_resources.py [--seconds 20] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
from cqdev.stack import create_database, drop_database, with_database
from cqregistry.domain.roster import sandbox_roster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Cluster, drive, report

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DATABASE = "cqdeploy_measure"


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its threads included) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Sampler:
    """Samples RSS of some pids every ``interval`` seconds in a thread; keeps the peak."""

    pids: Mapping[str, int]
    interval: float = 0.25
    peak: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                self.peak[name] = max(self.peak.get(name, 0.0), rss_mib(pid))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def cpu_over(
    pids: Mapping[str, int], seconds: float, during: threading.Thread | None
) -> dict[str, float]:
    """Millicores of each pid over ``seconds`` (or while ``during`` runs)."""
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    t0 = time.perf_counter()
    if during is None:
        time.sleep(seconds)
    else:
        during.start()
        during.join()
    elapsed = time.perf_counter() - t0
    return {n: (cpu_seconds(p) - before[n]) / elapsed * 1000 for n, p in pids.items()}


def token_and_slice(gateway: str) -> tuple[str, dict[str, str]]:
    vehicle_id = str(sandbox_roster(date.today()).vehicle("渝A12345").vehicle_id)
    login = httpx.post(
        f"{gateway}/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"}, timeout=10
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    return f"/api/v1/violations?vehicle_id={vehicle_id}", headers


def measure_jobs_run(env: Mapping[str, str]) -> tuple[float, float, float]:
    """Peak RSS (MiB), average millicores and wall seconds of one ``jobs run --force``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cqjobs", "jobs", "run", "--force"],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    cpu = 0.0
    t0 = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - t0 < 300:
        try:
            peak = max(peak, rss_mib(proc.pid))
            cpu = cpu_seconds(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    wall = time.perf_counter() - t0
    return peak, cpu / wall * 1000 if wall else 0.0, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    create_database(base, DATABASE)
    env = {
        "DATABASE_URL": with_database(base, DATABASE),
        "REDIS_URL": os.environ.get("MEASURE_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "KAFKA_TOPIC_PREFIX": f"measure{os.getpid()}.",
        "PAYMENT_MAINTENANCE_WINDOW": "",
    }
    try:
        with tempfile.TemporaryDirectory() as tmp, Cluster(env) as cluster:
            print(f"ready in {cluster.startup_s:.1f} s")
            pids = {n: int(p) for n, p in cluster.info["pids"].items() if n != "fake-alipay"}
            sampler = Sampler(pids)
            sampler.start()
            idle_cpu = cpu_over(pids, args.idle, None)
            idle_rss = {n: rss_mib(p) for n, p in pids.items()}
            target, headers = token_and_slice(cluster.gateway_url)
            results = []
            load = threading.Thread(
                target=lambda: results.append(
                    drive(
                        cluster.gateway_url,
                        [(target, headers)],
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        work_dir=Path(tmp),
                    )
                )
            )
            busy_cpu = cpu_over(pids, args.seconds, load)
            sampler.stop()
            sampler.sample()
            report("GET /api/v1/violations", results[0])
            run_env = {**cluster.env, **cluster.info["stack_env"]}
            jobs_peak, jobs_cpu, jobs_wall = measure_jobs_run(run_env)
        print(f"{'process':<14}{'idle RSS':>10}{'peak RSS':>10}{'idle CPU':>10}{'load CPU':>10}")
        for name in pids:
            print(
                f"{name:<14}{idle_rss[name]:>8.0f}Mi{sampler.peak.get(name, 0):>8.0f}Mi"
                f"{idle_cpu[name]:>8.0f}m{busy_cpu[name]:>9.0f}m"
            )
        print(
            f"{'jobs run':<14}{'':>10}{jobs_peak:>8.0f}Mi{'':>10}{jobs_cpu:>9.0f}m"
            f"  ({jobs_wall:.1f} s, sandbox data)"
        )
    finally:
        drop_database(base, DATABASE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
