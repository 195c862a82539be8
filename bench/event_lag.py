"""Benchmark: outbox → applied event lag at a steady 500 events/s (issue 12, "events fast").

What is measured, per event: from the commit of its outbox row to its application by each
consumer that applies it. The event is ``ViolationRecorded`` (the busiest event of a day:
every camera record), written to adjudication's outbox and applied by two consumer
groups, ``query.read-model`` (what the owner sees) and ``payment.violations``.

How the events are written: real ``EventEnvelope``s recorded in a unit of work
(``Database.unit_of_work``, as every service writes them: the outbox row in the
transaction, then the after-commit notification of ``cqcommon.outbox_notify``), one short
transaction each, from this process at a steady rate (event *i* is due at *i*/rate s; a pool of writers keeps up when a commit is
slow). Not through ``RecordViolation`` over gRPC: 500 recordings a second would measure
adjudication's validation on 2 shared cores, not the event path; the outbox row and its
notification are exactly what a recording writes.

Stack of its own: a database ``cqbench_eventlag`` on the machine's PostgreSQL (dropped
first if an interrupted run left it, dropped at the end), a redis-server and a Tansu broker
started here, every schema migrated. The event path runs as ``make run`` runs it, each
role in its own process: ``python -m cqadjudication relay``, ``python -m cqquery consume``,
``python -m cqpayment consume``. The whole run happens twice, with ``OUTBOX_LISTEN=true``
and ``false`` (fresh topics and groups each time, ``OUTBOX_POLL_INTERVAL_S`` at its
default), after a warm-up whose events are not counted.

In ``poll`` mode the writers send no notifications (``OUTBOX_LISTEN=false`` turns them off
in the services; here the writers' ``Database`` is built with ``notify_outbox=False``).

Timestamps (one clock, PostgreSQL's): the outbox row's ``created_at`` (its one-statement
transaction's start; the commit follows within a round trip), the relay's ``published_at``
(the start of the batch transaction that sent it), and two applied times per consumer
group: **seen**, when an observer in this process (one primary-key query for both
groups' oldest pending ids every 20 ms, ``clock_timestamp()``; ``Observer`` says why it
is bounded) first sees the inbox row committed, an upper bound
that decides PASS/MISS; and **tx start**, the inbox row's ``processed_at`` (the start of
the consumer's batch transaction), a lower bound. Printed: events written, applied, lost
(not applied ``--drain`` s after the last write; must be 0), applied twice (must be 0;
the inbox's and read model's keys make it so, this checks them), p50/p95/p99/max lag per
consumer group, the relay's pick-up time, the cores each process used, and PASS/MISS
against p99 ≤ 250 ms (the cores include this process, the writer and the observer, whose
PostgreSQL backends count in "machine" only). The writer stops 5 s after its
schedule's end if the machine cannot keep up (the events written are what is measured).
It asserts nothing.

    .venv/bin/python bench/event_lag.py [--rate 500] [--seconds 30] [--modes listen,poll]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from cqcommon.db import Database
from cqcommon.events import new_envelope
from cqcommon.migrations import apply_migrations
from cqcommon.protomap import PROCEDURES, SOURCES, STATUSES, plate_type_to_proto, timestamp_to_proto
from cqdev.pytest_plugin import migration_targets
from cqdev.stack import (
    Component,
    ManagedProcess,
    create_database,
    drop_database,
    start_own_kafka,
    start_own_postgres,
    start_own_redis,
    start_process,
    with_database,
)
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.query_read import DEFAULT_PG_SERVER, ProcessSampler, bench_dir

DB_NAME = "cqbench_eventlag"
TARGET_P99_MS = 250.0
#: (process name, module, role): the event path, each role in a process of its own
PROCESSES = (
    ("adjudication-relay", "cqadjudication", "relay"),
    ("query-consume", "cqquery", "consume"),
    ("payment-consume", "cqpayment", "consume"),
)
#: consumer group -> the schema whose inbox records it
GROUPS = {"query.read-model": "query", "payment.violations": "payment"}


def recorded(i: int) -> EventEnvelope:
    """A camera record of a synthetic vehicle (no real person's data)."""
    violation_id = str(uuid.uuid4())
    payload = adj.ViolationRecorded(
        violation_id=violation_id,
        source_system="bench-camera",
        source_record_id=f"lag-{violation_id}",
        vehicle_id=str(uuid.uuid4()),
        plate_type=plate_type_to_proto("02"),
        plate_number=f"渝Z{i % 100000:05d}",
        violation_code="1345",
        description_zh="超速",
        occurred_at=timestamp_to_proto(datetime.now(UTC)),
        place="重庆市江北区",
        fine_fen=20_000,
        points=3,
        source=SOURCES["non_site"],
        procedure=PROCEDURES["simple"],
        status=STATUSES["unhandled"],
    )
    return new_envelope(payload, aggregate_id=violation_id, producer="bench")


class Observer:
    """Watches the inboxes for the events written so far: each event's applied time is
    when a query first sees its inbox row committed (PostgreSQL's ``clock_timestamp()``,
    polled every ``interval_s``), an upper bound of the moment it became visible (late by
    at most the interval plus the query's own time).

    Its cost is bounded, so that the measurement does not slow what it measures: one
    query per tick for both groups, asking for each group's ``window`` oldest pending
    ids (primary-key lookups), which are the next to be applied since a partition is
    applied in order; every ``sweep_every`` ticks it asks for all of them, for what
    another partition applied ahead. While the lag is small, fewer than ``window`` ids
    are pending and every tick asks for all of them. (The first version asked for every
    pending id of each group in a query of its own every 10 ms: once a consumer fell
    behind, thousands of lookups per tick, up to 0.7 of a core of the PostgreSQL server
    taken from the consumers it was watching; at 500/s, going from 10 to 50 ms halved the
    consumers' own "tx start" p99, so the observer's share is not negligible.)"""

    def __init__(
        self,
        conninfo: str,
        interval_s: float = 0.02,
        window: int = 256,
        sweep_every: int = 10,
    ) -> None:
        self.conninfo = conninfo
        self.interval_s = interval_s
        self.window = window
        self.sweep_every = sweep_every
        # insertion-ordered: the oldest written first
        self.pending: dict[str, dict[str, None]] = {group: {} for group in GROUPS}
        self.seen: dict[str, dict[str, float]] = {group: {} for group in GROUPS}

    def add(self, event_id: str) -> None:
        for ids in self.pending.values():
            ids[event_id] = None

    def _query(self, sweep: bool) -> tuple[str, list[Any]]:
        parts, params = [], []
        for group, schema in GROUPS.items():
            pending = self.pending[group]
            if not pending:
                continue
            ids = list(pending) if sweep else list(islice(pending, self.window))
            parts.append(
                "SELECT %s::text, event_id::text, extract(epoch FROM clock_timestamp())"
                f" FROM {schema}.inbox WHERE consumer_group = %s AND event_id = ANY(%s::uuid[])"
            )
            params += [group, group, ids]
        return " UNION ALL ".join(parts), params

    async def run(self, stop: asyncio.Event, deadline: list[float]) -> None:
        """Until ``stop`` is set and nothing is pending, or past ``deadline[0]``."""
        tick = 0
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            while time.monotonic() < deadline[0]:
                if stop.is_set() and not any(self.pending.values()):
                    return
                query, params = self._query(sweep=tick % self.sweep_every == 0)
                tick += 1
                if query:
                    cur = await conn.execute(query, params)
                    for group, event_id, at in await cur.fetchall():
                        self.seen[group][event_id] = float(at)
                        self.pending[group].pop(event_id, None)
                await asyncio.sleep(self.interval_s)


@dataclass
class WriteResult:
    event_ids: list[str]
    seconds: float
    behind_ms_max: float  # how late the writer started the most delayed event


async def write_steady(
    db: Database,
    envelopes: list[EventEnvelope],
    rate: float,
    observer: Observer | None = None,
) -> WriteResult:
    """Append ``envelopes`` at ``rate`` a second, each in its own transaction."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(32)
    behind = 0.0

    async def write(env: EventEnvelope) -> None:
        try:
            async with db.unit_of_work() as uow:
                uow.record(env)
                await uow.commit()
            if observer is not None:
                observer.add(env.event_id)
        finally:
            slots.release()

    tasks = []
    t0 = loop.time()
    written = envelopes
    for i, env in enumerate(envelopes):
        due = t0 + i / rate
        if loop.time() - t0 > len(envelopes) / rate + 5:
            written = envelopes[:i]  # bounded: a machine that cannot keep up stops here
            break
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await slots.acquire()
        behind = max(behind, loop.time() - due)
        tasks.append(asyncio.create_task(write(env)))
    await asyncio.gather(*tasks)
    return WriteResult([e.event_id for e in written], loop.time() - t0, behind * 1000)


async def applied_counts(conninfo: str, ids: list[str]) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        counts = {}
        for group, schema in GROUPS.items():
            cur = await conn.execute(
                f"SELECT count(*) FROM {schema}.inbox"
                " WHERE consumer_group = %s AND event_id = ANY(%s::uuid[])",
                (group, ids),
            )
            row = await cur.fetchone()
            counts[group] = int(row[0]) if row else 0
        return counts


async def wait_applied(conninfo: str, ids: list[str], timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await applied_counts(conninfo, ids)
        if all(n >= len(ids) for n in counts.values()) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.5)


def pct(ordered: Sequence[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


@dataclass
class GroupFigures:
    group: str
    applied: int
    twice: int
    #: outbox row -> its inbox row committed, sorted: "committed" (the commit's own
    #: timestamp, exact) or "seen" (the observer's, an upper bound)
    applied_ms: list[float]
    applied_label: str
    #: outbox row -> start of the transaction that applied it, sorted
    started_ms: list[float]


async def commit_timestamps(conninfo: str) -> bool:
    """Whether the server keeps each transaction's commit time (track_commit_timestamp)."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute("SHOW track_commit_timestamp")
        row = await cur.fetchone()
        return row is not None and row[0] == "on"


async def measure(
    conninfo: str, ids: list[str], observer: Observer | None
) -> tuple[list[GroupFigures], list[float]]:
    """Per group: applied, applied twice and the lags; and the relay's pick-up times.
    Without an observer the server keeps commit timestamps: an inbox row is never
    updated, so its ``xmin`` is the consumer's batch transaction, whose commit time is
    exactly when the event became visible."""
    figures = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT event_id::text, extract(epoch FROM created_at),"
            " 1000 * extract(epoch FROM published_at - created_at)"
            " FROM adjudication.outbox WHERE event_id = ANY(%s::uuid[])",
            (ids,),
        )
        outbox = {r[0]: (float(r[1]), r[2]) for r in await cur.fetchall()}
        pickup = sorted(float(r[1]) for r in outbox.values() if r[1] is not None)
        for group, schema in GROUPS.items():
            cur = await conn.execute(
                "SELECT event_id::text, 1000 * extract(epoch FROM i.processed_at - o.created_at)"
                f" FROM {schema}.inbox i JOIN adjudication.outbox o USING (event_id)"
                " WHERE i.consumer_group = %s AND i.event_id = ANY(%s::uuid[])",
                (group, ids),
            )
            started = {r[0]: float(r[1]) for r in await cur.fetchall()}
            if observer is None:
                cur = await conn.execute(
                    "SELECT 1000 * extract(epoch FROM"
                    " pg_xact_commit_timestamp(i.xmin) - o.created_at)"
                    f" FROM {schema}.inbox i JOIN adjudication.outbox o USING (event_id)"
                    " WHERE i.consumer_group = %s AND i.event_id = ANY(%s::uuid[])",
                    (group, ids),
                )
                applied, label = sorted(float(r[0]) for r in await cur.fetchall()), "committed"
            else:
                applied = sorted(
                    1000 * (at - outbox[event_id][0])
                    for event_id, at in observer.seen[group].items()
                    if event_id in outbox
                )
                label = "seen"
            cur = await conn.execute(
                f"SELECT count(*) - count(DISTINCT event_id) FROM {schema}.inbox"
                " WHERE consumer_group = %s AND event_id = ANY(%s::uuid[])",
                (group, ids),
            )
            row = await cur.fetchone()
            twice = int(row[0]) if row else 0
            figures.append(
                GroupFigures(group, len(started), twice, applied, label, sorted(started.values()))
            )
        # the effect itself: one read-model row per violation
        cur = await conn.execute(
            "SELECT count(*) - count(DISTINCT v.violation_id) FROM query.violations v"
            " JOIN adjudication.outbox o ON o.message_key = v.violation_id::text"
            " WHERE o.event_id = ANY(%s::uuid[])",
            (ids,),
        )
        row = await cur.fetchone()
        figures[0].twice += int(row[0]) if row else 0
    return figures, pickup


@contextmanager
def event_path(env: dict[str, str], log_dir: Path, mode: str) -> Iterator[dict[str, int]]:
    """The relay and the consumers, each in its own process, stopped on exit."""
    procs: list[ManagedProcess] = []
    try:
        for name, module, role in PROCESSES:
            procs.append(
                start_process(
                    name,
                    [sys.executable, "-m", module, role],
                    log_path=log_dir / f"eventlag-{mode}-{name}.log",
                    env=env,
                )
            )
        yield {p.name: p.pid for p in procs}
    finally:
        for proc in procs:
            proc.stop(20)


async def run_mode(
    mode: str, base_env: dict[str, str], url: str, args: argparse.Namespace
) -> tuple[WriteResult, list[GroupFigures], list[float], dict[str, float]]:
    env = {
        **base_env,
        "OUTBOX_LISTEN": "true" if mode == "listen" else "false",
        "KAFKA_TOPIC_PREFIX": f"eventlag-{mode}-{uuid.uuid4().hex[:6]}.",
    }
    # polling relays need no notifications: their writers send none
    db = Database(url, "adjudication", min_size=4, max_size=32, notify_outbox=mode == "listen")
    await db.open()
    try:
        with event_path(env, bench_dir(), mode) as pids:
            # warm-up (not counted): topics, group joins, the relay's LISTEN connection
            warm = [recorded(i) for i in range(50)]
            await write_steady(db, warm, 50)
            counts = await wait_applied(url, [e.event_id for e in warm], args.setup_wait)
            if any(n < len(warm) for n in counts.values()):
                raise SystemExit(f"{mode}: warm-up events not applied in time: {counts}")
            envelopes = [recorded(i) for i in range(int(args.rate * args.seconds))]
            sampler = ProcessSampler(pids)
            # commit timestamps need no watching while the events flow
            observer = None if await commit_timestamps(url) else Observer(url)
            written_all = asyncio.Event()
            deadline = [float("inf")]
            watching = (
                asyncio.create_task(observer.run(written_all, deadline)) if observer else None
            )
            own_cpu0, own_t0 = time.process_time(), time.perf_counter()
            with sampler:
                written = await write_steady(db, envelopes, args.rate, observer)
                deadline[0] = time.monotonic() + args.drain
                written_all.set()
                if watching is not None:
                    await watching
                else:
                    await wait_applied(url, written.event_ids, args.drain)
            # this process: the writer (and the observer, if any); their PostgreSQL
            # backends are in "machine" only
            own = (time.process_time() - own_cpu0) / (time.perf_counter() - own_t0)
            figures, pickup = await measure(url, written.event_ids, observer)
            return written, figures, pickup, {**sampler.cores, "bench": own}
    finally:
        await db.close()


def report(
    mode: str,
    rate: float,
    written: WriteResult,
    figures: list[GroupFigures],
    pickup: list[float],
    cores: dict[str, float],
) -> None:
    n = len(written.event_ids)
    print(
        f"\n{mode}: {n} events written in {written.seconds:.1f} s"
        f" ({n / written.seconds:.0f}/s, target {rate:.0f}/s; writer at most"
        f" {written.behind_ms_max:.0f} ms behind schedule)"
    )
    print(
        f"  relay pick-up (commit -> batch start): p50 {pct(pickup, 0.5):.1f} ms,"
        f" p99 {pct(pickup, 0.99):.1f} ms, max {pickup[-1] if pickup else float('nan'):.1f} ms"
    )
    print(
        f"  {'consumer group':<20} {'applied':>7} {'lost':>5} {'twice':>5}  lag {'':<9}"
        f" {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  p99 <= {TARGET_P99_MS:.0f} ms"
    )
    for f in figures:
        for label, lags in ((f.applied_label, f.applied_ms), ("tx start", f.started_ms)):
            p99 = pct(lags, 0.99)
            verdict = ""
            if label != "tx start":  # the commit (or the upper bound) decides
                ok = f.applied == n and len(lags) == n and p99 <= TARGET_P99_MS
                verdict = "PASS" if ok else "MISS"
                head = f"  {f.group:<20} {f.applied:>7} {n - f.applied:>5} {f.twice:>5}"
            else:
                head = f"  {'':<20} {'':>7} {'':>5} {'':>5}"
            print(
                f"{head}  {label:<13} {pct(lags, 0.5):>6.1f}ms {pct(lags, 0.95):>6.1f}ms"
                f" {p99:>6.1f}ms {lags[-1] if lags else float('nan'):>6.1f}ms  {verdict}"
            )
    used = ", ".join(f"{name} {c:.2f}" for name, c in cores.items())
    print(f"  cores used during the run: {used}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default="listen,poll", help="listen, poll or both")
    parser.add_argument(
        "--drain", type=float, default=120.0, help="s to wait for the last events (else lost)"
    )
    parser.add_argument("--setup-wait", type=float, default=120.0, help="s for the warm-up")
    parser.add_argument(
        "--pg-server",
        default=None,
        help="a server to use (e.g. "
        + DEFAULT_PG_SERVER
        + "); default: a PostgreSQL of its own with track_commit_timestamp on",
    )
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"listen", "poll"}:
        parser.error("--modes takes listen and/or poll")

    components: list[Component] = []
    with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
        try:
            return run_all(args, modes, Path(tmp), components)
        finally:
            for component in reversed(components):
                component.close()


def run_all(
    args: argparse.Namespace, modes: list[str], tmp: Path, components: list[Component]
) -> int:
    """Every mode against ``--pg-server``, or a PostgreSQL of its own whose commit
    timestamps give the exact applied time (``measure``)."""
    pg_server = args.pg_server
    if pg_server is None:
        # durable like any server (fsync on): only the commit timestamps differ
        pg = start_own_postgres(
            tmp / "pg",
            bench_dir() / "eventlag-postgres.log",
            server_settings={"track_commit_timestamp": "on"},
        )
        components.append(pg)
        pg_server = pg.url
    drop_database(pg_server, DB_NAME)  # a leftover of an interrupted run
    create_database(pg_server, DB_NAME)
    url = with_database(pg_server, DB_NAME)
    try:
        for schema, folder in migration_targets():
            asyncio.run(apply_migrations(url, schema, folder))
        redis = start_own_redis(tmp / "redis", bench_dir() / "eventlag-redis.log")
        components.append(redis)
        kafka = start_own_kafka(bench_dir() / "eventlag-kafka.log")
        components.append(kafka)
        base_env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.url,
            "OTEL_EXPORTER": "none",
            "LOG_LEVEL": "WARNING",
        }
        print(
            f"event lag: ViolationRecorded at {args.rate:.0f}/s for {args.seconds:.0f} s,"
            f" modes {', '.join(modes)}; load before: {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        for mode in modes:
            written, figures, pickup, cores = asyncio.run(run_mode(mode, base_env, url, args))
            report(mode, args.rate, written, figures, pickup, cores)
        print(f"\nload after: {os.getloadavg()[0]:.2f} (1-min average, 2 cores shared)")
    finally:
        drop_database(pg_server, DB_NAME)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
