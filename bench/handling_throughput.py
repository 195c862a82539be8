"""Benchmark: self-service handlings per second, end to end (issue 8, R-ADJ-5).

One handling is: ``POST /api/v1/violations/{id}/handlings`` (start) → ``POST
/api/v1/handlings/{id}/verifications/handler/complete`` (the sandbox face adapter) →
``POST /api/v1/handlings/{id}/submit`` (points, decision, events) → the violation's detail,
read through the gateway, shows ``handled_unpaid`` (the events went through Kafka). One
watcher task asks the read model every 20 ms which of the awaited violations have the new
state (one SQL statement for all); then the worker reads its violation's detail once
through the gateway, again every ``--poll`` s until it shows it (``ReadModelWatcher``).

It works on a throw-away copy (``CREATE DATABASE … TEMPLATE``) of the generated 100k data
set of ``bench/query_read.py`` (generated first when missing), so the data set itself is
never changed and every run starts from the same state. It starts the whole cluster the
way `make run` does (``python -m cqdev run``) on free ports against that copy and a
redis-server of its own, picks violations the owners may handle themselves (their detail
answers ``online_handling.allowed`` with route ``handler``; several per driver, so the
points ledger is contended), logs the owners in, and runs ``--concurrency`` workers that
each take the next violation through the four steps.

It prints handlings/s (submits completed per second of the run, and read-model-visible
handlings per second), p50/p99 of each step, the error answers by code, and two checks of
the database afterwards: **lost updates** (a submitted decision whose violation the read
model never showed ``handled_unpaid`` within the wait, or a ledger whose points are not the
sum of its entries) and **points over the limit** (any ledger above
``POINTS_LIMIT``). It asserts nothing (tests never do; this prints).

    .venv/bin/python bench/handling_throughput.py [--handlings 1500] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from cqdev.stack import drop_database, start_own_redis, with_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Cluster
from bench.benchlib.fastclient import Answer, FastClient
from bench.benchlib.handling import Candidate, allowed_only, login, pct, pick_candidates, send
from bench.benchlib.plumbing import PlumbingCount, PlumbingCounter
from bench.benchlib.watch import ReadModelWatcher
from bench.query_read import (
    DEFAULT_PG_SERVER,
    Dataset,
    ProcessSampler,
    bench_dir,
    find_service_pid,
    prepare,
    profiled,
)

COPY_DB = "cqbench_handling"
POINTS_LIMIT = 12
STEPS = ("start", "verify", "submit", "visible")


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    errors: Counter[str] = field(default_factory=Counter)
    submitted: list[str] = field(default_factory=list)  # violation ids with a decision
    visible: int = 0
    submit_done_at: list[float] = field(default_factory=list)
    #: gateway reads of a violation the read model had but the answer did not show yet
    rereads: int = 0
    client_cores: float = 0.0
    plumbing: PlumbingCount | None = None


def copy_dataset(ds: Dataset) -> str:
    """A fresh copy of the data set's database; its URL."""
    drop_database(ds.url, COPY_DB)
    with psycopg.connect(ds.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        # a template must have no other connection; the data set is only ours here
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (ds.dbname,),
        )
        conn.execute(f'CREATE DATABASE "{COPY_DB}" TEMPLATE "{ds.dbname}"')
    return with_database(ds.url, COPY_DB)


async def handle_one(
    client: FastClient,
    c: Candidate,
    headers: dict[str, str],
    stats: Stats,
    wait_s: float,
    poll_s: float,
    watcher: ReadModelWatcher,
) -> None:
    def took(step: str, t0: float) -> float:
        now = time.perf_counter()
        stats.latencies[step].append((now - t0) * 1000)
        return now

    def failed(step: str, r: Answer) -> None:
        try:
            code = r.json()["error"]["code"]
        except Exception:
            code = str(r.status_code)
        stats.errors[f"{step}:{r.status_code}:{code}"] += 1

    t = time.perf_counter()
    r = await send(
        client, "POST", f"/api/v1/violations/{c.violation_id}/handlings", headers=headers
    )
    t = took("start", t)
    if r.status_code != 201:
        failed("start", r)
        return
    handling_id = r.json()["handling_id"]
    r = await send(
        client, "POST", f"/api/v1/handlings/{handling_id}/verifications/handler/complete",
        headers=headers,
    )  # fmt: skip
    t = took("verify", t)
    if r.status_code != 200:
        failed("verify", r)
        return
    r = await send(client, "POST", f"/api/v1/handlings/{handling_id}/submit", headers=headers)
    t = took("submit", t)
    if r.status_code != 200:
        failed("submit", r)
        return
    stats.submitted.append(c.violation_id)
    stats.submit_done_at.append(time.perf_counter())
    deadline = t + wait_s
    # the observer tells when the read model has it; then the user's own read, through
    # the gateway, must show it (and is read again until it does: a stale cache shows)
    await watcher.seen(c.violation_id, wait_s)
    while time.perf_counter() < deadline:
        r = await send(client, "GET", f"/api/v1/violations/{c.violation_id}", headers=headers)
        if r.status_code == 200 and r.json().get("status") == "handled_unpaid":
            took("visible", t)
            stats.visible += 1
            return
        stats.rereads += 1
        await asyncio.sleep(poll_s)
    stats.errors["visible:timeout"] += 1


async def run_load(
    url: str,
    gateway: str,
    candidates: list[Candidate],
    handlings: int,
    concurrency: int,
    wait_s: float,
    poll_s: float,
    sampler: ProcessSampler,
    profile: bool = False,
    counter: PlumbingCounter | None = None,
) -> tuple[Stats, float]:
    limits = httpx.Limits(max_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        users = sorted({c.alipay_user_id for c in candidates})
        headers = await login(client, users)
        chosen = (await allowed_only(client, candidates, headers))[:handlings]
        print(
            f"    {len(chosen)} violations allowed online for {len({c.licence_id for c in chosen})}"
            f" drivers (of {len(candidates)} SQL candidates)",
            flush=True,
        )
        queue: asyncio.Queue[Candidate] = asyncio.Queue()
        for c in chosen:
            queue.put_nowait(c)
        stats = Stats()

        watcher = ReadModelWatcher(url, "handled_unpaid")
        stop = asyncio.Event()
        watching = asyncio.create_task(watcher.run(stop))

        async def worker(fast: FastClient) -> None:
            while not queue.empty():
                c = queue.get_nowait()
                await handle_one(fast, c, headers[c.alipay_user_id], stats, wait_s, poll_s, watcher)

        me = psutil.Process()
        before = await asyncio.to_thread(counter.snapshot) if counter else None
        with sampler, profiled(profile, _python(sampler.pids), None, "handling"):
            cpu0, t0 = sum(me.cpu_times()[:2]), time.perf_counter()
            async with FastClient(gateway, concurrency + 8) as fast:
                await asyncio.gather(*(worker(fast) for _ in range(concurrency)))
            seconds = time.perf_counter() - t0
            # this process alone (its children are the cluster): the load generator's cost
            stats.client_cores = (sum(me.cpu_times()[:2]) - cpu0) / seconds
        stop.set()
        await watching
        if counter is not None and before is not None:
            after = await asyncio.to_thread(counter.snapshot)
            stats.plumbing = after.without(watcher.queries).per(before, len(stats.submitted))
        return stats, seconds


#: The launcher's whole tree in the CPU breakdown: the services above, the payment and
#: follow services, the registry, the Kafka broker and the relays.
CLUSTER = "cluster"


def _python(pids: dict[str, int]) -> dict[str, int]:
    return {name: pid for name, pid in pids.items() if name not in ("postgres", CLUSTER)}


def service_pids(cluster: Cluster) -> dict[str, int]:
    """The processes whose CPU the report breaks down: the gateway, the two services a
    handling goes through, payment (it learns every decision), the launcher's whole tree,
    and PostgreSQL (its postmaster and every backend)."""
    pids = {
        "gateway": find_service_pid(cluster, "gateway", "cqgateway"),
        "adjudication": find_service_pid(cluster, "adjudication", "cqadjudication"),
        "query": find_service_pid(cluster, "query", "cqquery"),
        "payment": find_service_pid(cluster, "payment", "cqpayment"),
        CLUSTER: int(cluster.info["launcher_pid"]),
    }
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] == "postgres" and proc.info["ppid"] == 1:
            pids["postgres"] = proc.pid
            break
    return pids


def invariants(url: str, submitted: Sequence[str]) -> dict[str, Any]:
    """Checks of adjudication's own records after the run (the source of truth)."""
    with psycopg.connect(url, autocommit=True) as conn:
        over = conn.execute(
            "SELECT count(*) FROM adjudication.points_ledger WHERE points > %s", (POINTS_LIMIT,)
        ).fetchone()
        # the ledger's invariant: its points are the sum of its entries in the cycle
        drift = conn.execute(
            "SELECT count(*) FROM adjudication.points_ledger l WHERE l.points <>"
            " COALESCE((SELECT sum(e.delta) FROM adjudication.points_entries e"
            " WHERE e.licence_id = l.licence_id AND e.cycle_start = l.cycle_start), 0)"
        ).fetchone()
        decided = conn.execute(
            "SELECT count(*) FROM adjudication.violations WHERE violation_id = ANY(%s::uuid[])"
            " AND status = 'handled_unpaid' AND decision_no IS NOT NULL",
            (list(submitted),),
        ).fetchone()
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT violation_id FROM adjudication.handlings"
            " WHERE state = 'submitted' GROUP BY violation_id HAVING count(*) > 1) t"
        ).fetchone()
        # where the database work went: tables read by sequential scans during the run
        scans = conn.execute(
            "SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, idx_scan"
            " FROM pg_stat_user_tables WHERE schemaname IN ('adjudication', 'query')"
            " AND seq_tup_read > 10000 ORDER BY seq_tup_read DESC LIMIT 6"
        ).fetchall()
        xacts = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
            (COPY_DB,),
        ).fetchone()
    for table, seq, rows, idx in scans:
        print(f"    seq scans of {table}: {seq} ({rows:,} rows read); index scans {idx}")
    if xacts:
        print(f"    transactions in the copy: {xacts[0]:,} committed, {xacts[1]:,} rolled back")
    return {
        "ledgers over the limit": int(over[0]) if over else -1,
        "ledgers != sum of their entries": int(drift[0]) if drift else -1,
        "submitted but not decided": len(submitted) - (int(decided[0]) if decided else 0),
        "violations submitted twice": int(twice[0]) if twice else -1,
    }


def report(stats: Stats, seconds: float, checks: dict[str, Any], concurrency: int) -> None:
    done = len(stats.submitted)
    print(f"\n{done} handlings submitted in {seconds:.1f} s with {concurrency} workers")
    print(f"  submitted/s: {done / seconds:7.1f}   visible in the read model/s: "
          f"{stats.visible / seconds:7.1f}   (target >= 150)")  # fmt: skip
    print("  step       n      p50 ms   p99 ms")
    for step in STEPS:
        values = stats.latencies[step]
        med = statistics.median(values) if values else float("nan")
        print(f"  {step:<8} {len(values):5d}  {med:8.1f} {pct(values, 0.99):8.1f}")
    print(f"  gateway reads after the read model had it that did not show it yet: {stats.rereads}")
    if stats.errors:
        print("  errors: " + ", ".join(f"{k} x{v}" for k, v in stats.errors.most_common()))
    lost = checks["submitted but not decided"] + stats.errors.get("visible:timeout", 0)
    print(f"  lost updates: {lost}   points over the limit: {checks['ledgers over the limit']}")
    for name, value in checks.items():
        print(f"    {name}: {value}")


def report_cpu(sampled: dict[str, float], client_cores: float, rate: float) -> None:
    """Cores used during the load, and CPU ms per handling (what the rate costs each
    process; steadier between runs than the rate itself)."""
    cores = dict(sampled)
    machine, cluster = cores.pop("machine"), cores.pop(CLUSTER)
    named = sum(c for name, c in cores.items() if name != "postgres")
    cores["rest of the cluster"] = max(0.0, cluster - named)
    cores["load generator"] = client_cores
    print(
        "  CPU in cores during the load: "
        + ", ".join(f"{name} {c:.2f}" for name, c in cores.items())
        + f"; the machine {machine:.2f} of {psutil.cpu_count()}"
        + " (postgres: every backend of the server; the rest of the cluster: follow,"
        + " registry, the Kafka broker)"
    )
    if rate > 0:
        print(
            "  CPU ms per handling: "
            + ", ".join(f"{name} {c * 1000 / rate:.1f}" for name, c in cores.items())
            + f"; the machine {machine * 1000 / rate:.1f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--handlings", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--wait", type=float, default=30.0, help="s to see it in the read model")
    parser.add_argument(
        "--poll", type=float, default=0.1, help="s between reads of the detail while waiting"
    )
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument("--profile", action="store_true", help="py-spy the services")
    args = parser.parse_args(argv)
    ds = Dataset("100k", 100_000, args.pg_server)
    prepare(ds, skip_generate=False)
    url = copy_dataset(ds)
    print(f"copied {ds.dbname} to {COPY_DB}", flush=True)
    try:
        candidates = pick_candidates(url, args.handlings)
        with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
            redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis.log")
            try:
                env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
                log = bench_dir() / "cluster-handling.log"
                with Cluster(env, log_path=log) as cluster:
                    print(f"cluster ready in {cluster.startup_s:.1f} s (log {log})", flush=True)
                    sampler = ProcessSampler(service_pids(cluster))
                    stats, seconds = asyncio.run(
                        run_load(
                            url,
                            cluster.gateway_url,
                            candidates,
                            args.handlings,
                            args.concurrency,
                            args.wait,
                            args.poll,
                            sampler,
                            args.profile,
                            PlumbingCounter(cluster.info["metrics_urls"], url),
                        )
                    )
            finally:
                redis_server.close()
        report(stats, seconds, invariants(url, stats.submitted), args.concurrency)
        report_cpu(sampler.cores, stats.client_cores, len(stats.submitted) / seconds)
        if stats.plumbing is not None:
            print(stats.plumbing.line("handling"))
    finally:
        drop_database(ds.url, COPY_DB)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
