"""What the day mix reads besides the requests: event lag, processes, and two yardsticks.

- :func:`event_lag` — outbox ``created_at`` → the consumer's inbox ``processed_at`` for every
  (event, consumer group) pair of events created during the timed load, across the service
  schemas (each has its own ``outbox`` and ``inbox``), read after the run; and created →
  ``published_at`` (the relay's share). Nothing is coordinated with the services: the
  tables say it all. ``processed_at`` is the applying transaction's start, so the lag is
  the time until the consumer began the transaction that applied it.
- :class:`Processes` — peak RSS (the process and its children, sampled) and CPU in cores of
  every process of the cluster (the launcher's children and the broker it started, the
  replicas started beside it), the PostgreSQL backends serving the data set (CPU only: their
  RSS is mostly shared buffers), this load generator and the machine.
- :func:`pgbench_select` — ``pgbench -S`` (select-only) on a scratch database of its own,
  created, initialised and dropped here: what this PostgreSQL does with trivial reads.
- :func:`bare_route` — ``GET /healthz`` of a gateway under wrk (httpx when wrk is missing):
  what one FastAPI process answers with no work behind the route.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from cqdev.stack import create_database, drop_database, with_database

from bench.benchlib import LoadResult, drive
from bench.benchlib.payments import BackendCpu
from bench.query_read import ProcessSampler


@dataclass(frozen=True)
class Lag:
    """Event lag over one timed load, in ms."""

    pairs: int  # (event, consumer group) pairs applied
    events: int  # events created in the window
    unapplied: int  # events created in the window that no consumer group applied
    p50_ms: float
    p99_ms: float
    max_ms: float
    publish_p99_ms: float


def _schemas_with(conn: psycopg.Connection[tuple[object, ...]], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = %s"
        " AND table_schema NOT IN ('public', 'pg_catalog', 'information_schema')"
        " ORDER BY table_schema",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def event_lag(url: str, started_at: float, ended_at: float) -> Lag:
    """The lag of the events created between the two times (``time.time()`` values)."""
    with psycopg.connect(url, autocommit=True) as conn:
        outboxes = _schemas_with(conn, "outbox")
        inboxes = _schemas_with(conn, "inbox")
        if not outboxes or not inboxes:
            return Lag(0, 0, 0, 0.0, 0.0, 0.0, 0.0)
        out = " UNION ALL ".join(
            f"SELECT event_id, created_at, published_at FROM {s}.outbox"
            " WHERE created_at >= to_timestamp(%(t0)s) AND created_at < to_timestamp(%(t1)s)"
            for s in outboxes
        )
        inn = " UNION ALL ".join(
            f"SELECT event_id, consumer_group, processed_at FROM {s}.inbox" for s in inboxes
        )
        ms = "extract(epoch FROM i.processed_at - o.created_at) * 1000"
        pub = "extract(epoch FROM o.published_at - o.created_at) * 1000"
        row = conn.execute(
            f"WITH o AS ({out}), i AS ({inn}) SELECT"
            f" (SELECT count(*) FROM o),"
            f" (SELECT count(*) FROM o WHERE NOT EXISTS"
            f"   (SELECT 1 FROM i WHERE i.event_id = o.event_id)),"
            f" count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY {ms}),"
            f" percentile_cont(0.99) WITHIN GROUP (ORDER BY {ms}), max({ms}),"
            f" (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY {pub}) FROM o"
            f"   WHERE o.published_at IS NOT NULL)"
            f" FROM o JOIN i ON i.event_id = o.event_id",
            {"t0": started_at, "t1": ended_at},
        ).fetchone()
    assert row is not None
    events, unapplied, pairs, p50, p99, worst, publish = row
    return Lag(
        int(pairs), int(events), int(unapplied),
        float(p50 or 0), float(p99 or 0), float(worst or 0), float(publish or 0),
    )  # fmt: skip


def wait_applied(
    url: str, started_at: float, ended_at: float, wait_s: float, *, stall_s: float = 5.0
) -> int:
    """Wait until every event of the window has been applied by some consumer group, or
    ``wait_s`` passed, or nothing moved for ``stall_s`` (an event type nobody consumes
    would keep it waiting); the number still unapplied."""
    deadline = time.perf_counter() + wait_s
    last, moved_at = -1, time.perf_counter()
    while True:
        unapplied = event_lag(url, started_at, ended_at).unapplied
        now = time.perf_counter()
        if unapplied != last:
            last, moved_at = unapplied, now
        if unapplied == 0 or now > deadline or now - moved_at > stall_s:
            return unapplied
        time.sleep(0.5)


class Processes:
    """Peak RSS and CPU (cores) of named pids while active, with the data set's PostgreSQL
    backends and this process; :meth:`rows` gives (name, RSS MB or None, cores)."""

    def __init__(self, pids: Mapping[str, int], dbname: str) -> None:
        self.sampler = ProcessSampler(pids, interval_s=0.5)
        self.backends = BackendCpu(dbname)
        self.me = psutil.Process()
        self.client_cores = 0.0
        self._cpu0 = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Processes:
        self.sampler.__enter__()
        self.backends.__enter__()
        self._cpu0, self._t0 = sum(self.me.cpu_times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        # this process only: its children are the cluster, counted under their names
        self.client_cores = (sum(self.me.cpu_times()[:2]) - self._cpu0) / wall if wall else 0
        self.backends.__exit__()
        self.sampler.__exit__()

    def rows(self) -> list[tuple[str, float | None, float]]:
        out: list[tuple[str, float | None, float]] = [
            (name, self.sampler.peak_mb[name], self.sampler.cores[name])
            for name in self.sampler.pids
        ]
        out.append(("postgres (data set's backends)", None, self.backends.cores))
        me_mb = self.me.memory_info().rss / 2**20
        out.append(("load generator (this process)", me_mb, self.client_cores))
        out.append(("machine (every process)", None, self.sampler.cores["machine"]))
        return out


def cluster_pids(info: Mapping[str, object]) -> dict[str, int]:
    """Every process the launcher started and is still running: its children by name and
    the stack's (the Kafka broker; PostgreSQL and Redis are given to it, so not here)."""
    pids: dict[str, int] = {}
    for key in ("pids", "stack_pids"):
        table = info.get(key)
        if isinstance(table, dict):
            for name, pid in table.items():
                if psutil.pid_exists(int(pid)):
                    pids[str(name)] = int(pid)
    return pids


# --------------------------------------------------------------------------------------
# yardsticks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    p50_ms: float
    p99_ms: float
    clients: int
    threads: int
    scale: int
    seconds: float


def pgbench_select(
    server_url: str, dbname: str, *, seconds: int = 10, scale: int = 10
) -> PgbenchResult | None:
    """``pgbench -S`` with ``-c`` 2x and ``-j`` 1x the CPUs on a scratch database (dropped
    at the end, also on errors); None when pgbench is not installed."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        return None
    cpus = os.cpu_count() or 1
    clients, threads = 2 * cpus, cpus
    drop_database(server_url, dbname)
    create_database(server_url, dbname)
    url = with_database(server_url, dbname)
    try:
        subprocess.run(
            [pgbench, "-i", "-q", "-s", str(scale), url],
            check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="cqbench-pgbench-") as tmp:
            out = subprocess.run(
                [pgbench, "-S", "-n", "-c", str(clients), "-j", str(threads), "-T",
                 str(seconds), "-l", "--log-prefix", f"{tmp}/log", url],
                check=True, capture_output=True, text=True, timeout=seconds + 120,
            ).stdout  # fmt: skip
            latencies = sorted(
                int(line.split()[2]) / 1000
                for log in Path(tmp).glob("log*")
                for line in log.read_text().splitlines()
                if line.strip()
            )
    finally:
        drop_database(server_url, dbname)
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    tps = float(found.group(1)) if found else 0.0

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0.0

    return PgbenchResult(tps, pct(0.5), pct(0.99), clients, threads, scale, seconds)


def bare_route(gateway: str, *, seconds: float, concurrency: int) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
        return drive(
            gateway,
            [("/healthz", {})],
            seconds=seconds,
            concurrency=concurrency,
            work_dir=Path(tmp),
        )
