"""Benchmark: items per second of the two largest nightly jobs (issue 11, R-JOB-4, R-JOB-5).

It answers "does a full night's work fit the 22:00-00:30 window (2.5 h)?" with the
generated data set of ``bench/query_read.py`` (``cqbench_1m`` by default, generated first
when missing; ``--size 100k`` for the small one), on a throw-away copy (``CREATE DATABASE
... TEMPLATE``) so the data set itself never changes. It starts only the two services the
jobs live in, ``python -m cqadjudication serve`` and ``python -m cqfollow serve`` (gRPC
only: no outbox relay, no consumers, so no Kafka; the outbox rows the jobs write stay
unpublished and are counted), against the copy and a redis-server of its own, and calls
each service's ``RunJob`` through the gRPC stubs batch after batch with the returned
checkpoint until ``done``, as the job runner (services/jobs) does:

1. **Scoring-cycle rollover** (``AdjudicationService.RunJob("scoring_cycle_rollover")``):
   every ledger of the copy (or the first ``--ledgers``) is made due - its cycle ended
   yesterday and began a year before - and the job runs with ``as_of`` = tonight 22:00
   Asia/Shanghai. Printed: ledgers, seconds, items/s, batches, p50/p99 batch time, CPU
   (in cores) of the service, of the PostgreSQL backends serving the copy and of this
   client; then the checks: every ledger rolled exactly once (its cycle moved to start
   today, one closing ``cycle_rollover`` entry in the old cycle), the ledger invariant
   (points == sum of the current cycle's entries) and ``PointsChanged`` outbox rows ==
   ledgers rolled. A real night rolls the ledgers whose anniversary it is (~1/365 of the
   licences); the time of that share and of the whole set is put against the window.
2. **SMS follow expiry** (``FollowService.RunJob("expire_sms_follows")``): ``--follows``
   running SMS follows (real users following real vehicles of the copy, started a year and
   a day ago, expired within the last day) are inserted, then the job runs until done.
   Printed: items/s, batches, p50/p99 batch time, CPU; checks: every one ended with reason
   ``expired`` and ``FollowEnded`` outbox rows == follows inserted.
3. **Daytime impact**: a simple read (``AdjudicationService.GetViolation`` of a few
   violations, one at a time) is sampled for ``--probe-seconds`` before the rollover and
   all through it; its p50/p99 before and during show whether the batches hold up
   daytime traffic on the same service and database.

It asserts nothing (benchmarks print). Every process it starts is stopped at the end, and
the copy dropped (``--keep-copy`` keeps it for a look).

    .venv/bin/python bench/nightly_jobs.py [--size 1m] [--ledgers 0] [--follows 100000]
        [--rollover-batch 0] [--follow-batch 0] [--probe-seconds 10] [--skip-generate]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import grpc
import psutil
import psycopg
from cqcommon.clock import SHANGHAI
from cqcommon.protomap import timestamp_to_proto
from cqdev.stack import (
    ManagedProcess,
    drop_database,
    free_port,
    start_own_redis,
    start_process,
    with_database,
)
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj_pb
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as adj_grpc
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common_pb
from cqtraffic.follow.v1 import follow_pb2_grpc as follow_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.query_read import DEFAULT_PG_SERVER, Dataset, bench_dir, parse_size, prepare

ROOT = Path(__file__).resolve().parent.parent
COPY_DB = "cqbench_nightly"
ROLLOVER_JOB = "scoring_cycle_rollover"
EXPIRY_JOB = "expire_sms_follows"
WINDOW_S = 2.5 * 3600  # 22:00 to 00:30 Asia/Shanghai
DAYS_A_YEAR = 365
READY_TIMEOUT_S = 600.0  # the first start migrates the copy (an index over 1M ledgers)


# --------------------------------------------------------------------------------------
# the copy and the services
# --------------------------------------------------------------------------------------


def copy_dataset(ds: Dataset) -> str:
    """A fresh copy of the data set's database; its URL."""
    drop_database(ds.url, COPY_DB)
    with psycopg.connect(with_database(ds.url, "postgres"), autocommit=True) as conn:
        # a template must have no other connection; the data set is only ours here
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (ds.dbname,),
        )
        conn.execute(f'CREATE DATABASE "{COPY_DB}" TEMPLATE "{ds.dbname}"')
    return with_database(ds.url, COPY_DB)


@dataclass
class Service:
    name: str
    addr: str
    proc: ManagedProcess


def start_service(name: str, module: str, env: dict[str, str], addr_var: str) -> Service:
    addr = f"127.0.0.1:{free_port()}"
    log = bench_dir() / f"nightly-{name}.log"
    proc = start_process(
        name,
        [sys.executable, "-m", module, "serve"],
        log_path=log,
        env={**env, addr_var: addr},
        cwd=ROOT,
    )
    return Service(name, addr, proc)


async def wait_ready(services: Sequence[Service]) -> None:
    """Until each gRPC port answers (it listens only after the migrations ran)."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    for svc in services:
        async with grpc.aio.insecure_channel(svc.addr) as channel:
            while True:
                if not svc.proc.alive():
                    raise RuntimeError(f"{svc.name} exited:\n{svc.proc.log_tail(30)}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{svc.name} not ready after {READY_TIMEOUT_S:.0f} s")
                try:
                    await asyncio.wait_for(channel.channel_ready(), timeout=2)
                    break
                except TimeoutError:
                    continue


# --------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends connected to the copy (the services' pools)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (COPY_DB,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def cpu_s(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU seconds used during a block by the service, the copy's PostgreSQL backends
    (not the whole server: other work on the machine is not ours) and this client."""

    def __init__(self, url: str, service_pid: int) -> None:
        self.url = url
        self.service_pid = service_pid
        self.cores: dict[str, float] = {}
        self._t0 = 0.0
        self._start: dict[str, float] = {}
        self._pg0: dict[int, float] = {}

    def _machine(self) -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def __enter__(self) -> CpuMeter:
        self._pg0 = {pid: cpu_s(pid) for pid in backend_pids(self.url)}
        self._start = {
            "service": cpu_s(self.service_pid),
            "client": cpu_s(os.getpid()),
            "machine": self._machine(),
        }
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        # a backend that was not there at the start counts from zero
        pg = sum(cpu_s(pid) - self._pg0.get(pid, 0.0) for pid in backend_pids(self.url))
        end = {
            "service": cpu_s(self.service_pid),
            "client": cpu_s(os.getpid()),
            "machine": self._machine(),
        }
        self.cores = {k: (end[k] - self._start[k]) / wall for k in end}
        self.cores["postgres"] = pg / wall

    def line(self, service: str) -> str:
        c = self.cores
        return (
            f"  CPU in cores: {service} {c['service']:.2f}, postgres (the copy's backends)"
            f" {c['postgres']:.2f}, this client {c['client']:.2f}; whole machine"
            f" {c['machine']:.2f} of {psutil.cpu_count()}"
        )


@dataclass
class JobRun:
    items: int = 0
    errors: int = 0
    batches: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def line(self, what: str) -> str:
        return (
            f"  {self.items:,} {what} in {self.seconds:.1f} s = {self.rate:,.0f} items/s;"
            f" {self.batches} batches, batch p50 {pct(self.batch_ms, 0.5):.0f} ms,"
            f" p99 {pct(self.batch_ms, 0.99):.0f} ms, max {max(self.batch_ms, default=0):.0f} ms;"
            f" errors {self.errors}"
        )


RunJob = Callable[[jobs_pb2.RunJobRequest], Awaitable[jobs_pb2.RunJobResponse]]


async def run_until_done(
    run_job: RunJob, job: str, batch_size: int, as_of: datetime, night: date
) -> JobRun:
    """RunJob again and again with the returned checkpoint until ``done`` (the runner's loop)."""
    out = JobRun()
    checkpoint = ""
    t_start = time.perf_counter()
    last_note = t_start
    while True:
        request = jobs_pb2.RunJobRequest(
            job=job,
            checkpoint=checkpoint,
            batch_size=batch_size,
            as_of=timestamp_to_proto(as_of),
            night=common_pb.Date(year=night.year, month=night.month, day=night.day),
        )
        t0 = time.perf_counter()
        response = await run_job(request)
        now = time.perf_counter()
        out.batch_ms.append((now - t0) * 1000)
        out.batches += 1
        out.items += response.items_done
        out.errors += response.errors
        if response.message:
            out.messages.add(response.message)
        checkpoint = response.checkpoint
        if now - last_note >= 30:
            last_note = now
            rate = out.items / (now - t_start)
            print(f"    ... {out.items:,} done, {rate:,.0f}/s", flush=True)
        if response.done:
            break
    out.seconds = time.perf_counter() - t_start
    return out


class Probe:
    """A daytime read, one call at a time with a short pause, its latencies kept."""

    def __init__(self, stub: adj_grpc.AdjudicationServiceStub, violation_ids: list[str]) -> None:
        self.stub = stub
        self.ids = violation_ids
        self.failures = 0

    async def sample(self, stop: asyncio.Event, max_s: float) -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + max_s
        i = 0
        while not stop.is_set() and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                call: Any = self.stub.GetViolation(
                    adj_pb.GetViolationRequest(violation_id=self.ids[i % len(self.ids)]),
                    timeout=10,
                )
                await call
                latencies.append((time.perf_counter() - t0) * 1000)
            except grpc.aio.AioRpcError:
                self.failures += 1
            i += 1
            await asyncio.sleep(0.02)
        return latencies


def probe_line(name: str, values: Sequence[float]) -> str:
    if not values:
        return f"    {name:<7} no samples"
    return (
        f"    {name:<7} {len(values):5d} reads  p50 {statistics.median(values):6.1f} ms"
        f"  p99 {pct(values, 0.99):6.1f} ms  max {max(values):6.1f} ms"
    )


def one(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --------------------------------------------------------------------------------------
# 1. rollover
# --------------------------------------------------------------------------------------


def make_ledgers_due(url: str, night: date, limit: int) -> tuple[int, int, date, date]:
    """Every ledger (or the first ``limit`` by licence id) ended its cycle yesterday.

    Returns (ledgers due, all ledgers, the fake cycle's start, its end).
    """
    end = night - timedelta(days=1)
    start = end.replace(year=end.year - 1) + timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        total = one(conn, "SELECT count(*) FROM adjudication.points_ledger")
        print(f"  the data set: ledgers != sum of their cycle's entries: {invariant_broken(conn)}")
        subset = ""  # every ledger
        extra: tuple[Any, ...] = ()
        if limit > 0:
            subset = (
                " AND l.licence_id IN (SELECT licence_id FROM adjudication.points_ledger"
                " ORDER BY licence_id LIMIT %s)"
            )
            extra = (limit,)
        # the current cycle's entries move back with it, so the ledger invariant (points ==
        # the sum of its cycle's entries) holds before the job as it did before the move; a
        # cycle that happened to start tonight would otherwise share its entries with the
        # new cycle the rollover opens
        conn.execute(
            "UPDATE adjudication.points_entries e SET cycle_start = %s"
            " FROM adjudication.points_ledger l WHERE e.licence_id = l.licence_id"
            f" AND e.cycle_start = l.cycle_start{subset}",
            (start, *extra),
        )
        cur = conn.execute(
            "UPDATE adjudication.points_ledger l SET cycle_start = %s, cycle_end = %s"
            f" WHERE true{subset}",
            (start, end, *extra),
        )
        due = cur.rowcount
        conn.execute("VACUUM ANALYZE adjudication.points_entries")
        # a real table is vacuumed; a million dead row versions would slow the job unfairly
        conn.execute("VACUUM ANALYZE adjudication.points_ledger")
    return due, total, start, end


def invariant_broken(conn: psycopg.Connection[Any]) -> int:
    """Ledgers whose points are not the sum of their current cycle's entries."""
    return one(
        conn,
        "SELECT count(*) FROM adjudication.points_ledger l WHERE l.points <>"
        " COALESCE((SELECT sum(e.delta) FROM adjudication.points_entries e"
        " WHERE e.licence_id = l.licence_id AND e.cycle_start = l.cycle_start), 0)",
    )


def rollover_checks(url: str, night: date, start: date, end: date, outbox0: int) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            "still due (not rolled)": one(
                conn,
                "SELECT count(*) FROM adjudication.points_ledger WHERE cycle_end < %s",
                (night,),
            ),
            "rolled (cycle now starts tonight, old one closed)": one(
                conn,
                "SELECT count(*) FROM adjudication.points_ledger l"
                " WHERE l.cycle_start = %s AND l.cycle_end >= %s AND EXISTS (SELECT 1"
                " FROM adjudication.points_entries e WHERE e.licence_id = l.licence_id"
                " AND e.channel = 'cycle_rollover' AND e.cycle_start = %s)",
                (night, night, start),
            ),
            "closing entries of the old cycle": one(
                conn,
                "SELECT count(*) FROM adjudication.points_entries WHERE channel = 'cycle_rollover'"
                " AND cycle_start = %s AND points_after = 0",
                (start,),
            ),
            "ledgers closed more than once": one(
                conn,
                "SELECT count(*) FROM (SELECT licence_id FROM adjudication.points_entries"
                " WHERE channel = 'cycle_rollover' AND cycle_start = %s AND points_after = 0"
                " GROUP BY licence_id HAVING count(*) > 1) t",
                (start,),
            ),
            "carried into the new cycle": one(
                conn,
                "SELECT count(*) FROM adjudication.points_ledger WHERE cycle_start = %s"
                " AND points > 0",
                (night,),
            ),
            "ledgers != sum of their cycle's entries": invariant_broken(conn),
            "PointsChanged outbox rows": one(
                conn,
                "SELECT count(*) FROM adjudication.outbox WHERE event_type LIKE '%%PointsChanged'",
            )
            - outbox0,
        }


async def bench_rollover(
    url: str, adj: Service, night: date, args: argparse.Namespace
) -> dict[str, Any]:
    as_of = datetime.combine(night, dtime(22, 0), SHANGHAI)
    due, total, start, end = make_ledgers_due(url, night, args.ledgers)
    print(
        f"\n[rollover] {due:,} of {total:,} ledgers made due (cycle {start} .. {end});"
        f" as_of {as_of.isoformat()}",
        flush=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        outbox0 = one(
            conn, "SELECT count(*) FROM adjudication.outbox WHERE event_type LIKE '%%PointsChanged'"
        )
        print(
            f"  before the job: ledgers != sum of their cycle's entries: {invariant_broken(conn)}"
        )
        ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT violation_id FROM adjudication.violations ORDER BY violation_id LIMIT 50"
            ).fetchall()
        ]
    async with grpc.aio.insecure_channel(adj.addr) as channel:
        stub = adj_grpc.AdjudicationServiceStub(channel)
        probe = Probe(stub, ids)
        before: list[float] = []
        if args.probe_seconds > 0 and ids:
            before = await probe.sample(asyncio.Event(), args.probe_seconds)
        stop = asyncio.Event()
        probing = (
            asyncio.create_task(probe.sample(stop, 24 * 3600))
            if args.probe_seconds > 0 and ids
            else None
        )

        async def call(req: jobs_pb2.RunJobRequest) -> jobs_pb2.RunJobResponse:
            response: jobs_pb2.RunJobResponse = await stub.RunJob(req, timeout=300)
            return response

        meter = CpuMeter(url, adj.proc.pid)
        with meter:
            run = await run_until_done(call, ROLLOVER_JOB, args.rollover_batch, as_of, night)
        stop.set()
        during = await probing if probing is not None else []
    print(run.line("ledgers rolled"))
    if run.messages:
        print(f"  messages: {sorted(run.messages)}")
    print(meter.line("adjudication"))
    checks = rollover_checks(url, night, start, end, outbox0)
    print("  checks (expected: still due 0, rolled = closing entries = outbox rows = "
          f"{due:,}, closed more than once 0, != sum 0):")  # fmt: skip
    for name, value in checks.items():
        print(f"    {name}: {value:,}")
    share = total / DAYS_A_YEAR
    if run.rate > 0:
        print(
            f"  a real night (~1/{DAYS_A_YEAR} of {total:,} licences = {share:,.0f} ledgers):"
            f" {share / run.rate:,.1f} s; the whole set: {total / run.rate:,.0f} s"
            f" = {total / run.rate / WINDOW_S:.0%} of the {WINDOW_S / 3600:g} h window"
        )
    if args.probe_seconds > 0:
        print("  daytime read (AdjudicationService.GetViolation, one at a time):")
        print(probe_line("before", before))
        print(probe_line("during", during))
        if probe.failures:
            print(f"    failed reads: {probe.failures}")
    return {"run": run, "checks": checks, "due": due, "total": total}


# --------------------------------------------------------------------------------------
# 2. follow expiry
# --------------------------------------------------------------------------------------


def insert_lapsed_follows(url: str, count: int, started: datetime) -> int:
    """``count`` running SMS follows, started a year and a day ago, expired within the last
    day: user n follows vehicle n (users with an Alipay id, wrapping round; vehicles
    distinct, so the one-running-follow-per-follower-and-vehicle index holds)."""
    with psycopg.connect(url, autocommit=True) as conn:
        vehicles = one(conn, "SELECT count(*) FROM follow.vehicles")
        if vehicles < count:
            raise SystemExit(
                f"only {vehicles:,} vehicles in the copy: --follows {count} is too many"
            )
        cur = conn.execute(
            "WITH u AS (SELECT person_id, alipay_user_id,"
            "  row_number() OVER (ORDER BY person_id) - 1 AS i"
            "  FROM follow.persons WHERE alipay_user_id IS NOT NULL),"
            " n AS (SELECT count(*) AS users FROM u),"
            " v AS (SELECT vehicle_id, row_number() OVER (ORDER BY vehicle_id) - 1 AS j"
            "  FROM follow.vehicles ORDER BY vehicle_id LIMIT %(count)s)"
            " INSERT INTO follow.follows (follow_id, follower_key, follower_user_id,"
            "  follower_person_id, target, vehicle_id, licence_id, consent, request_id,"
            "  started_at, expires_at)"
            " SELECT gen_random_uuid(), 'user:' || u.alipay_user_id, u.alipay_user_id,"
            "  u.person_id, 'vehicle', v.vehicle_id, NULL, 'sms', NULL, %(started)s,"
            "  %(started)s + interval '1 year' + (v.j %% 86000) * interval '1 second'"
            " FROM v CROSS JOIN n JOIN u ON u.i = v.j %% n.users",
            {"count": count, "started": started},
        )
        inserted = cur.rowcount
        conn.execute("VACUUM ANALYZE follow.follows")
    return inserted


def follow_checks(url: str, started: datetime, outbox0: int) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            "ended with reason 'expired'": one(
                conn,
                "SELECT count(*) FROM follow.follows WHERE started_at = %s"
                " AND ended_at IS NOT NULL AND end_reason = 'expired'",
                (started,),
            ),
            "still running": one(
                conn,
                "SELECT count(*) FROM follow.follows WHERE started_at = %s AND ended_at IS NULL",
                (started,),
            ),
            "FollowEnded outbox rows": one(
                conn, "SELECT count(*) FROM follow.outbox WHERE event_type LIKE '%%FollowEnded'"
            )
            - outbox0,
        }


async def bench_follow_expiry(
    url: str, follow: Service, night: date, args: argparse.Namespace
) -> dict[str, Any]:
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    started = now.replace(year=now.year - 1) - timedelta(days=1)
    t0 = time.perf_counter()
    inserted = insert_lapsed_follows(url, args.follows, started)
    print(
        f"\n[follow expiry] {inserted:,} lapsed SMS follows inserted in"
        f" {time.perf_counter() - t0:.1f} s (started {started.isoformat()})",
        flush=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        outbox0 = one(
            conn, "SELECT count(*) FROM follow.outbox WHERE event_type LIKE '%%FollowEnded'"
        )
    async with grpc.aio.insecure_channel(follow.addr) as channel:
        stub = follow_grpc.FollowServiceStub(channel)

        async def call(req: jobs_pb2.RunJobRequest) -> jobs_pb2.RunJobResponse:
            response: jobs_pb2.RunJobResponse = await stub.RunJob(req, timeout=300)
            return response

        meter = CpuMeter(url, follow.proc.pid)
        with meter:
            as_of = datetime.combine(night, dtime(22, 0), SHANGHAI)
            run = await run_until_done(call, EXPIRY_JOB, args.follow_batch, as_of, night)
    print(run.line("follows expired"))
    print(meter.line("vehicle-follow"))
    checks = follow_checks(url, started, outbox0)
    print(f"  checks (expected: expired = outbox rows = {inserted:,}, still running 0):")
    for name, value in checks.items():
        print(f"    {name}: {value:,}")
    if run.rate > 0:
        print(
            f"  {inserted:,} follows take {inserted / run.rate:,.0f} s"
            f" = {inserted / run.rate / WINDOW_S:.1%} of the window"
        )
    return {"run": run, "checks": checks, "inserted": inserted}


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


async def run_benchmarks(url: str, adj: Service, follow: Service, args: argparse.Namespace) -> None:
    await wait_ready([adj, follow])
    night = datetime.now(SHANGHAI).date()
    if not args.skip_rollover:
        rollover = await bench_rollover(url, adj, night, args)
    if args.follows > 0:
        expiry = await bench_follow_expiry(url, follow, night, args)
    if not args.skip_rollover and args.follows > 0:
        r, f = rollover["run"], expiry["run"]
        share = rollover["total"] / DAYS_A_YEAR
        night_s = share / r.rate + f.seconds if r.rate else float("nan")
        full_s = rollover["total"] / r.rate + f.seconds if r.rate else float("nan")
        print(
            f"\nnight budget: tonight's rollover share + {f.items:,} follow expiries ="
            f" {night_s:,.0f} s ({night_s / WINDOW_S:.1%} of {WINDOW_S:,.0f} s);"
            f" every ledger at once + the follows = {full_s:,.0f} s ({full_s / WINDOW_S:.0%})"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", default="1m", help="the data set: 1m (default) or 100k")
    parser.add_argument("--ledgers", type=int, default=0, help="ledgers made due (0: all)")
    parser.add_argument("--follows", type=int, default=100_000, help="lapsed SMS follows")
    parser.add_argument(
        "--rollover-batch", type=int, default=0, help="RunJob batch_size (0: the service's)"
    )
    parser.add_argument(
        "--follow-batch", type=int, default=0, help="RunJob batch_size (0: the service's)"
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=10.0, help="daytime reads before (0: none)"
    )
    parser.add_argument("--skip-rollover", action="store_true")
    parser.add_argument("--skip-generate", action="store_true", help="fail if the set is missing")
    parser.add_argument("--keep-copy", action="store_true", help=f"leave {COPY_DB} behind")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    label, vehicles = parse_size(args.size)
    ds = Dataset(label, vehicles, args.pg_server)
    prepare(ds, skip_generate=args.skip_generate)
    t0 = time.perf_counter()
    url = copy_dataset(ds)
    print(f"copied {ds.dbname} to {COPY_DB} in {time.perf_counter() - t0:.0f} s", flush=True)
    services: list[Service] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
            redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis.log")
            try:
                env = dict(
                    os.environ, DATABASE_URL=url, REDIS_URL=redis_server.url, LOG_LEVEL="WARNING"
                )
                adj = start_service(
                    "adjudication", "cqadjudication", env, "ADJUDICATION_SERVICE_ADDR"
                )
                services.append(adj)
                follow = start_service("vehicle-follow", "cqfollow", env, "FOLLOW_SERVICE_ADDR")
                services.append(follow)
                asyncio.run(run_benchmarks(url, adj, follow, args))
            finally:
                for svc in services:
                    svc.proc.stop(15)
                redis_server.close()
    finally:
        if not args.keep_copy:
            drop_database(ds.url, COPY_DB)
    print(f"\nuptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (load 1 / 5 min)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
