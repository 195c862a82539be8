"""Benchmark: a day's mix of work on a Chongqing-scale data set, on one and on two replicas
(issue 12; what `make bench` runs).

**Data set.** ``--vehicles`` synthetic vehicles (default 1,000,000, about 5 violations each,
so 5M violations) in the database ``cqbench_<size>`` of the local PostgreSQL
(``cqbench_1m``; ``--vehicles 6000000``, the whole city, is ``cqbench_6m``), made by
``python -m cqdev.datagen`` through ``bench/query_read.py``'s dataset code and reused when a
finished one is there (its marker row in ``public.cqbench_dataset_v3``). 1M is about 22M
rows: 578 s and 7 GB on a quiet day here (30k rows/s), well over an hour with the machine
saturated by other sessions (2-4k rows/s). 6M is six times that (extrapolated, never run
here): about 134M rows, 1 hour and 42 GB of disk at the quiet rate, half a day at the
saturated one.

**Setup (not timed).** A redis-server of its own, the whole cluster as `make run` starts
it (``benchlib.Cluster``: free ports, sandbox mode, the fake Alipay, the payment
maintenance window off so the time of day does not matter) on the data set's database
(the sandbox database ``cqtraffic`` and the machine's Redis are never touched), then the
pools of ``benchlib.daymix_setup``: logged-in owners to read, violations their owners may
handle online, decisions payment knows (fresh owners imported through the registry with
one decided violation each), follows to ask (by approval and by SMS). The pools are sized
for ``--pool-rate`` operations a second; a load that empties one stops early and says so.
What a run handles, pays and follows stays in the data set, as a real day's would; the
draws take a fresh seed (``--seed``), so the next run asks other people.

**Timed.** ``--seconds`` of the mix of ``benchlib.daymix_load`` (80 % reads: /me, a
vehicle's list, a detail; 10 % handlings: start → sandbox face step → submit; 8 % payments:
create → pay at the fake Alipay, which notifies the gateway; 2 % follows: request → approve,
or request → SMS code), ``--concurrency`` workers in a closed loop, once per entry of
``--replicas``: ``1`` is the launcher's gateway and query service; ``2`` adds a query
replica (``cqquery serve``) and two gateway replicas (``cqgateway serve``) pointed at both
query replicas (round-robin), and spreads the workers over those two gateways (the
launcher's gateway then only takes the fake Alipay's notifications).

**Printed**, per load: one row per endpoint (req/s, p50, p99, errors by status and code),
operations done and failed, the event lag (outbox ``created_at`` → inbox ``processed_at``,
p50/p99/max, read from the tables after the run; and created → published), the peak RSS
and the CPU (cores) of every process; then ``GET /healthz`` under wrk (the bare FastAPI
route) and ``pgbench -S`` on a scratch database of its own (created and dropped here) from
the same run, for scale, and how far the second replica took the rate. It asserts
nothing.

    .venv/bin/python bench/daymix.py [--vehicles 1000000] [--seconds 60] [--concurrency 32]
        [--replicas 1,2] [--pool-rate 120] [--readers 2000] [--skip-generate]

Every process it starts (cluster, replicas, redis-server, wrk, pgbench) is stopped and the
scratch database dropped at the end, on Ctrl-C, SIGTERM and errors too. Logs go to
``.local/bench/`` (``cluster-daymix-<size>.log``, ``query#2.log``, ``gateway#2.log``...).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

from cqdev.stack import start_own_redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Cluster, LoadResult, have_wrk
from bench.benchlib.daymix_load import MIX, MixResult, Pools, Recorder, run_mix, warm_up
from bench.benchlib.daymix_measure import (
    Lag,
    PgbenchResult,
    Processes,
    bare_route,
    cluster_pids,
    event_lag,
    pgbench_select,
    wait_applied,
)
from bench.benchlib.daymix_setup import gather_pools
from bench.benchlib.replicas import Replicas
from bench.query_read import DEFAULT_PG_SERVER, Dataset, bench_dir, prepare

PGBENCH_DB = "cqbench_daymix_pgbench"
_T = TypeVar("_T")


def size_label(vehicles: int) -> str:
    """1000000 -> "1m", 100000 -> "100k" (the data set's database is ``cqbench_<label>``)."""
    if vehicles % 1_000_000 == 0:
        return f"{vehicles // 1_000_000}m"
    if vehicles % 1_000 == 0:
        return f"{vehicles // 1_000}k"
    return str(vehicles)


@dataclass
class Phase:
    replicas: int
    gateways: int
    result: MixResult
    lag: Lag
    unapplied_after_wait: int
    processes: list[tuple[str, float | None, float]]

    @property
    def ops_rate(self) -> float:
        return sum(self.result.ops.values()) / self.result.seconds if self.result.seconds else 0


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def print_phase(phase: Phase, concurrency: int) -> None:
    r = phase.result
    total_ops = sum(r.ops.values())
    ops = ", ".join(f"{op} {r.ops[op]:,} ({r.failed[op]} failed)" for op in MIX)
    print(
        f"\n== {phase.replicas} replica(s): {phase.gateways} gateway(s) taking the load,"
        f" {phase.replicas} query; {r.seconds:.1f} s, {concurrency} workers;"
        f" {total_ops:,} operations = {phase.ops_rate:.1f}/s: {ops}"
    )
    if r.exhausted:
        print(f"   (stopped early: the {r.exhausted} pool ran dry; raise --pool-rate)")
    head = f"   {'endpoint':<58} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8}  errors"
    print(head)
    print("   " + "-" * (len(head) - 3))
    every: list[float] = []
    errors_total = 0
    for route in sorted(
        r.recorder.endpoints, key=lambda k: -len(r.recorder.endpoints[k].latencies_ms)
    ):
        ep = r.recorder.endpoints[route]
        every += ep.latencies_ms
        errors_total += sum(ep.errors.values())
        errs = ", ".join(f"{k} x{v}" for k, v in ep.errors.most_common()) or "0"
        print(
            f"   {route:<58} {len(ep.latencies_ms) / r.seconds:7.1f}"
            f" {statistics.median(ep.latencies_ms):7.1f} {_pct(ep.latencies_ms, 0.99):8.1f}  {errs}"
        )
    print(
        f"   {'all requests':<58} {len(every) / r.seconds:7.1f} {statistics.median(every) if every else 0:7.1f}"
        f" {_pct(every, 0.99):8.1f}  {errors_total} of {len(every):,}"
    )
    lag = phase.lag
    print(
        f"   event lag, outbox created -> consumer applied: p50 {lag.p50_ms:.0f} ms,"
        f" p99 {lag.p99_ms:.0f} ms, max {lag.max_ms:.0f} ms over {lag.pairs:,} (event, group)"
        f" pairs of {lag.events:,} events; created -> published p99 {lag.publish_p99_ms:.0f} ms;"
        f" not applied by any group 30 s after the load: {phase.unapplied_after_wait}"
    )
    print(f"   {'process':<34} {'peak RSS MB':>11} {'CPU cores':>9}")
    for name, mb, cores in phase.processes:
        rss = f"{mb:11.0f}" if mb is not None else f"{'-':>11}"
        note = (
            "  (the fake Alipay's notifications only)"
            if name == "gateway" and phase.gateways > 1
            else ""
        )
        print(f"   {name:<34} {rss} {cores:9.2f}{note}")


def print_yardsticks(
    bare: LoadResult | None, pg: PgbenchResult | None, phases: Sequence[Phase]
) -> None:
    print()
    if bare is not None:
        tool = "wrk, 1 thread, 16 connections" if have_wrk() else "httpx (wrk not installed)"
        print(
            f"bare FastAPI route GET /healthz, the launcher's gateway ({tool}, same run):"
            f" {bare.rate:,.0f} req/s, p50 {bare.pct(0.5):.1f} ms, p99 {bare.pct(0.99):.1f} ms,"
            f" errors {bare.errors}"
        )
    if pg is not None:
        print(
            f"pgbench -S (select-only, scale {pg.scale}, -c {pg.clients} -j {pg.threads},"
            f" {pg.seconds} s, same server): {pg.tps:,.0f} tps, p50 {pg.p50_ms:.2f} ms,"
            f" p99 {pg.p99_ms:.2f} ms"
        )
    else:
        print("pgbench not installed: no PostgreSQL yardstick")
    if len(phases) >= 2 and phases[0].ops_rate:
        base = phases[0]
        for p in phases[1:]:
            print(
                f"scale-out: {p.replicas} replicas {p.ops_rate:.1f} ops/s against"
                f" {base.ops_rate:.1f} with 1 = x{p.ops_rate / base.ops_rate:.2f}"
                f" (machine: {os.cpu_count()} CPUs; load average now"
                f" {', '.join(f'{x:.2f}' for x in os.getloadavg())})"
            )


def _sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--vehicles", type=int, default=1_000_000, help="data set size")
    parser.add_argument("--seconds", type=float, default=60.0, help="per timed load")
    parser.add_argument("--concurrency", type=int, default=32, help="workers (closed loop)")
    parser.add_argument(
        "--replicas", default="1,2", help="timed loads, by gateway/query replicas (default 1,2)"
    )
    parser.add_argument(
        "--pool-rate", type=float, default=120.0,
        help="operations/s per replica the pools are sized for (default 120)",
    )  # fmt: skip
    parser.add_argument("--readers", type=int, default=2000, help="owners reading")
    parser.add_argument("--seed", type=int, default=None, help="draws (default: the clock)")
    parser.add_argument("--bare-seconds", type=float, default=10.0)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--setup-wait", type=float, default=300.0, help="s for setup events")
    parser.add_argument(
        "--skip-generate", action="store_true", help="fail instead of generating the data set"
    )
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    return parser


def pool_sizes(replicas: Sequence[int], seconds: float, rate: float) -> dict[str, list[int]]:
    """Items each pool needs per timed load: a second replica is sized for half again."""
    sizes: dict[str, list[int]] = {op: [] for op in MIX if op != "read"}
    for r in replicas:
        ops = seconds * rate * (1 + 0.5 * (r - 1))
        for op in sizes:
            sizes[op].append(math.ceil(ops * MIX[op] / 100) + 5)
    return sizes


def run(args: argparse.Namespace) -> int:
    replicas = [int(x) for x in str(args.replicas).split(",") if x.strip()]
    if not replicas or min(replicas) < 1 or replicas != sorted(replicas):
        raise SystemExit("--replicas: ascending counts >= 1, e.g. 1,2")
    ds = Dataset(size_label(args.vehicles), args.vehicles, args.pg_server)
    prepare(ds, skip_generate=args.skip_generate)
    seed = args.seed if args.seed is not None else int(time.time())
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; seed {seed};"
        f" {args.seconds:.0f} s per load, {args.concurrency} workers",
        flush=True,
    )
    phases: list[Phase] = []
    bare: LoadResult | None = None
    with tempfile.TemporaryDirectory(prefix="cqbench-daymix-") as tmp:
        redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis-daymix.log")
        try:
            env = {
                "DATABASE_URL": ds.url,
                "REDIS_URL": redis_server.url,
                "SANDBOX_MODE": "true",
                "PAYMENT_MAINTENANCE_WINDOW": "",  # R-PAY-6 would refuse 22:00-00:30
            }
            log = bench_dir() / f"cluster-daymix-{ds.label}.log"
            with (
                Cluster(env, log_path=log, ready_timeout_s=900) as cluster,
                Replicas(cluster, bench_dir()) as extra,
            ):
                print(f"cluster ready in {cluster.startup_s:.1f} s (log {log})", flush=True)
                sizes = pool_sizes(replicas, args.seconds, args.pool_rate)
                t0 = time.perf_counter()
                readers, handlings, payments, follows, staff = asyncio.run(
                    gather_pools(
                        cluster.gateway_url,
                        ds.url,
                        str(cluster.env["REGISTRY_SERVICE_ADDR"]),
                        ds.vehicles,
                        readers_n=args.readers,
                        handlings_n=sum(sizes["handling"]),
                        payments_n=sum(sizes["payment"]),
                        follows_n=sum(sizes["follow"]),
                        seed=seed,
                        wait_s=args.setup_wait,
                    )
                )
                print(
                    f"setup in {time.perf_counter() - t0:.0f} s: {len(readers)} readers,"
                    f" {len(handlings)} handlings, {len(payments)} payments,"
                    f" {len(follows)} follows",
                    flush=True,
                )
                handling_parts = _cut(handlings, sizes["handling"])
                payment_parts = _cut(payments, sizes["payment"])
                follow_parts = _cut(follows, sizes["follow"])
                for i, r in enumerate(replicas):
                    while len(extra.query_addrs) < r:
                        extra.add_query()
                    if r == 1:
                        gateways = [cluster.gateway_url]
                    else:
                        while len(extra.gateway_urls) < r:
                            extra.add_gateway()
                        gateways = extra.gateway_urls[:r]
                    pools = Pools(
                        readers,
                        handling_parts[i],
                        payment_parts[i],
                        follow_parts[i],
                        staff,
                    )
                    asyncio.run(warm_up(gateways, readers, 3.0))
                    pids = cluster_pids(cluster.info) | extra.pids()
                    print(f"load with {r} replica(s) ...", flush=True)
                    with Processes(pids, ds.dbname) as procs:
                        result = asyncio.run(
                            run_mix(
                                gateways,
                                str(cluster.info["fake_alipay_url"]),
                                pools,
                                seconds=args.seconds,
                                concurrency=args.concurrency,
                                recorder=Recorder(),
                                seed=seed + i,
                            )
                        )
                    left = wait_applied(ds.url, result.started_at, result.ended_at, 30.0)
                    lag = event_lag(ds.url, result.started_at, result.ended_at)
                    phases.append(Phase(r, len(gateways), result, lag, left, procs.rows()))
                    print_phase(phases[-1], args.concurrency)
                    if i == 0:
                        bare = bare_route(
                            cluster.gateway_url, seconds=args.bare_seconds, concurrency=16
                        )
        finally:
            redis_server.close()
    pg = pgbench_select(args.pg_server, PGBENCH_DB, seconds=args.pgbench_seconds)
    print_yardsticks(bare, pg, phases)
    return 0


def _cut(items: Sequence[_T], sizes: Sequence[int]) -> list[list[_T]]:
    """``items`` in consecutive slices of ``sizes`` (one per timed load)."""
    out: list[list[_T]] = []
    start = 0
    for n in sizes:
        out.append(list(items[start : start + n]))
        start += n
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)  # clean up on SIGTERM as on Ctrl-C
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
