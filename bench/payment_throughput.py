"""Benchmark: fine payments per second end to end, and the R-PAY-3 double-charge storm (issue 9).

One payment is: ``POST /api/v1/payments {decision_no}`` with a fresh ``Idempotency-Key``
(the **create** call, timed on its own) → ``POST <fake Alipay>/sandbox/alipay/trades/
{trade_no}/pay`` (the buyer pays; the fake posts its signed notification to the gateway's
``/api/v1/alipay/notify`` and answers once that first attempt has its answer) → polling
``GET /api/v1/violations/{violation_id}`` until the read model shows ``paid`` (``FinePaid``
went through Kafka and was applied): the **end-to-end** time.

Setup (not timed): a database of its own (``cqbench_payment``, created here, migrated by
the launcher like `make run` does, dropped at the end), a redis-server of its own, the whole
cluster on free ports (``bench/benchlib.Cluster``, the fake Alipay included, the maintenance
window turned off so the figures do not depend on the time of day). Then ``--payments`` +
``--storm-rounds`` fresh owners (``cqdev.testing.new_owner``, imported through the registry's
``ImportRecords`` without pinned ids, in batches), each with one on-site decided violation
recorded at the counter API as staff (decision numbers ``500101…``; one in four dated 20 days
ago, so it carries a late fee, R-PAY-2), and a wait until payment knows every decision
(``GET /api/v1/decisions/{no}`` answers 200).

Timed load: ``--concurrency`` workers take the payment decisions one by one. Printed:
payments/s (paid in the read model, per second of the run), p50/p99 of create, pay and end
to end, the errors by step and code, and the CPU used per process during the load.

Storm (R-PAY-3), a separate phase on decisions of its own: per round one decision and
``--storm-concurrency`` concurrent creates for it (half by its owner with different keys,
half by other logged-in users), then every distinct ``trade_no`` any create returned is
paid at the fake. Per decision it counts the pay calls the fake accepted and the payments
the payment database holds as succeeded/duplicate/refunded; ``double charges`` is the number
of decisions charged more than once by either count, and must be 0.

It asserts nothing (tests do that); the targets of the issue are printed beside the figures.

    .venv/bin/python bench/payment_throughput.py [--payments 2000] [--concurrency 32]
        [--storm-rounds 1000] [--storm-concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg
from cqdev.stack import create_database, drop_database, start_own_redis, with_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Cluster
from bench.benchlib.fastclient import Answer, FastClient
from bench.benchlib.handling import login, pct
from bench.benchlib.payments import (
    RESENT,
    BackendCpu,
    Decided,
    import_owners,
    record_decisions,
    send,
    unique_owners,
    wait_known,
)
from bench.benchlib.plumbing import PlumbingCount, PlumbingCounter
from bench.benchlib.watch import ReadModelWatcher
from bench.query_read import (
    DEFAULT_PG_SERVER,
    ProcessSampler,
    bench_dir,
    find_service_pid,
    profiled,
)

DB_NAME = "cqbench_payment"
STEPS = ("create", "pay", "end_to_end")
PAYMENT_TARGET = (200.0, 30.0)  # payments/s at least, create p99 ms at most
CLUSTER = "cluster"
PG_SERVER = "postgres server"
#: payment rows that mean money was taken for the decision
CHARGED_STATES = ("succeeded", "duplicate", "refunded")


@dataclass
class LoadStats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    errors: Counter[str] = field(default_factory=Counter)
    created: int = 0
    with_late_fee: int = 0  # created payments whose amount carries a late fee (R-PAY-2)
    paid_at_provider: int = 0
    completed: int = 0
    notify_unacknowledged: int = 0  # the fake's first attempt was not answered `success`
    client_cores: float = 0.0
    plumbing: PlumbingCount | None = None


@dataclass
class StormStats:
    codes: Counter[str] = field(default_factory=Counter)
    pay_answers: Counter[str] = field(default_factory=Counter)
    trades: dict[str, set[str]] = field(default_factory=dict)  # decision -> trade_nos
    accepted: Counter[str] = field(default_factory=Counter)  # decision -> pays accepted
    winners: Counter[str] = field(default_factory=Counter)  # who got the 201s, per round
    seconds: float = 0.0


# --------------------------------------------------------------------------------------
# setup: owners, decisions, logins
# --------------------------------------------------------------------------------------


def taken_keys(url: str) -> set[tuple[str, str]]:
    """Natural keys the read model already holds (the sandbox roster): new owners avoid them."""
    with psycopg.connect(url, autocommit=True) as conn:
        keys = {("plate", r[0]) for r in conn.execute("SELECT plate_number FROM query.vehicles")}
        keys |= {("vin", r[0]) for r in conn.execute("SELECT vin FROM query.vehicles")}
        for id_number, alipay_user_id in conn.execute(
            "SELECT id_number, alipay_user_id FROM query.persons"
        ):
            keys |= {("id", id_number), ("alipay", alipay_user_id or "")}
    return keys


def error_code(r: Answer) -> str:
    try:
        return f"{r.status_code}:{r.json()['error']['code']}"
    except Exception:
        return str(r.status_code)


async def create(client: FastClient, headers: dict[str, str], decision_no: str) -> Answer:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"decision_no": decision_no}
    return await send(client, "POST", "/api/v1/payments", json=body, headers=headers | key)


async def pay_at_fake(fake: FastClient, trade_no: str) -> Answer:
    return await send(fake, "POST", f"/sandbox/alipay/trades/{trade_no}/pay")


# --------------------------------------------------------------------------------------
# the timed load
# --------------------------------------------------------------------------------------


async def pay_one(
    client: FastClient,
    fake: FastClient,
    d: Decided,
    headers: dict[str, str],
    stats: LoadStats,
    wait_s: float,
    poll_s: float,
    watcher: ReadModelWatcher,
) -> None:
    """One payment through its three steps; an exception is counted under its step."""
    step_of = ["create"]
    try:
        await _pay_steps(client, fake, d, headers, stats, wait_s, poll_s, watcher, step_of)
    except FastClient.FAILED as exc:  # a timeout or a dropped connection
        stats.errors[f"{step_of[0]}:{type(exc).__name__}"] += 1


async def _pay_steps(
    client: FastClient,
    fake: FastClient,
    d: Decided,
    headers: dict[str, str],
    stats: LoadStats,
    wait_s: float,
    poll_s: float,
    watcher: ReadModelWatcher,
    step_of: list[str],
) -> None:
    t0 = time.perf_counter()
    r = await create(client, headers, d.decision_no)
    t1 = time.perf_counter()
    stats.latencies["create"].append((t1 - t0) * 1000)
    if r.status_code != 201:
        stats.errors[f"create:{error_code(r)}"] += 1
        return
    stats.created += 1
    payment = r.json()
    stats.with_late_fee += payment.get("late_fee_fen", 0) > 0
    step_of[0] = "pay"
    p = await pay_at_fake(fake, payment["trade_no"])
    stats.latencies["pay"].append((time.perf_counter() - t1) * 1000)
    answer = p.json() if p.status_code == 200 else {}
    if answer.get("trade_status") != "TRADE_SUCCESS":
        stats.errors[f"pay:{p.status_code}:{answer.get('trade_status') or p.text[:60]}"] += 1
        return
    stats.paid_at_provider += 1
    if not (answer.get("first_attempt") or {}).get("acknowledged"):
        stats.notify_unacknowledged += 1  # the fake retries on its schedule; we keep polling
    step_of[0] = "poll"
    deadline = time.perf_counter() + wait_s
    path = f"/api/v1/violations/{d.violation_id}"
    # the read model's watcher first, then the owner's own read through the gateway
    await watcher.seen(d.violation_id, wait_s)
    while time.perf_counter() < deadline:
        v = await send(client, "GET", path, headers=headers)
        if v.status_code == 200 and v.json().get("status") == "paid":
            stats.latencies["end_to_end"].append((time.perf_counter() - t0) * 1000)
            stats.completed += 1
            return
        if v.status_code != 200:
            stats.errors[f"poll:{error_code(v)}"] += 1
        await asyncio.sleep(poll_s)
    stats.errors["paid:not visible within the wait"] += 1


async def run_load(
    url: str,
    client: FastClient,
    fake: FastClient,
    decided: Sequence[Decided],
    headers: Mapping[str, dict[str, str]],
    concurrency: int,
    wait_s: float,
    poll_s: float,
    sampler: ProcessSampler,
    pg: BackendCpu,
    profile: bool = False,
    counter: PlumbingCounter | None = None,
) -> tuple[LoadStats, float]:
    queue: asyncio.Queue[Decided] = asyncio.Queue()
    for d in decided:
        queue.put_nowait(d)
    stats = LoadStats()

    watcher = ReadModelWatcher(url, "paid")
    stop = asyncio.Event()
    watching = asyncio.create_task(watcher.run(stop))

    async def worker() -> None:
        while not queue.empty():
            d = queue.get_nowait()
            owner = headers[d.alipay_user_id]
            await pay_one(client, fake, d, owner, stats, wait_s, poll_s, watcher)

    me = psutil.Process()
    # the services in Python (the launcher's tree and PostgreSQL are not py-spy's)
    python = {k: v for k, v in sampler.pids.items() if k not in (CLUSTER, PG_SERVER)}
    before = await asyncio.to_thread(counter.snapshot) if counter else None
    with sampler, pg, profiled(profile, python, None, "payment"):
        cpu0, t0 = sum(me.cpu_times()[:2]), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
        # this process alone (the cluster is not its child): the load generator's cost
        stats.client_cores = (sum(me.cpu_times()[:2]) - cpu0) / seconds
    stop.set()
    await watching
    if counter is not None and before is not None:
        after = await asyncio.to_thread(counter.snapshot)
        stats.plumbing = after.without(watcher.queries).per(before, stats.completed)
    return stats, seconds


# --------------------------------------------------------------------------------------
# the storm (R-PAY-3)
# --------------------------------------------------------------------------------------


async def storm(
    client: FastClient,
    fake: FastClient,
    decided: Sequence[Decided],
    headers: Mapping[str, dict[str, str]],
    strangers: Sequence[dict[str, str]],
    size: int,
) -> StormStats:
    """Per decision: ``size`` concurrent creates, then every trade any of them got is paid."""
    stats = StormStats()
    rng = random.Random(9)
    t0 = time.perf_counter()
    for n, d in enumerate(decided, 1):
        own = headers[d.alipay_user_id]
        callers = [("owner", own)] * (size // 2)
        callers += [("other user", h) for h in strangers[: size - size // 2]]
        rng.shuffle(callers)  # else the owner's requests, sent first, always win the race
        answers = await asyncio.gather(
            *(create(client, h, d.decision_no) for _, h in callers), return_exceptions=True
        )
        trade_nos: set[str] = set()
        winners: set[str] = set()
        for (who, _), a in zip(callers, answers, strict=True):
            if isinstance(a, BaseException):
                stats.codes[f"exception:{type(a).__name__}"] += 1
                continue
            stats.codes["201" if a.status_code == 201 else error_code(a)] += 1
            if a.status_code == 201 and a.json().get("trade_no"):
                trade_nos.add(a.json()["trade_no"])
                winners.add(who)
        stats.winners[" and ".join(sorted(winners)) or "nobody"] += 1
        stats.trades[d.decision_no] = trade_nos
        pays = await asyncio.gather(
            *(pay_at_fake(fake, t) for t in sorted(trade_nos)), return_exceptions=True
        )
        for p in pays:
            if isinstance(p, BaseException):
                stats.pay_answers[f"exception:{type(p).__name__}"] += 1
                continue
            status = p.json().get("trade_status") if p.status_code == 200 else None
            stats.pay_answers[f"{p.status_code}:{status or p.text[:60]}"] += 1
            if status == "TRADE_SUCCESS":
                stats.accepted[d.decision_no] += 1
        if n % 100 == 0:
            print(f"    storm: {n}/{len(decided)} rounds", flush=True)
    stats.seconds = time.perf_counter() - t0
    return stats


def charged_payments(url: str, decision_nos: Sequence[str]) -> dict[str, Counter[str]]:
    """Per decision, its payments by state in the payment database (the source of truth)."""
    out: dict[str, Counter[str]] = {no: Counter() for no in decision_nos}
    with psycopg.connect(url, autocommit=True) as conn:
        for decision_no, state, n in conn.execute(
            "SELECT decision_no, state, count(*) FROM payment.payments"
            " WHERE decision_no = ANY(%s) GROUP BY decision_no, state",
            (list(decision_nos),),
        ):
            out[decision_no][state] = n
    return out


def settled_storm(url: str, stats: StormStats, wait_s: float) -> dict[str, Counter[str]]:
    """The storm decisions' payments once every decision paid at the fake shows a charged
    payment (notifications retried by the fake may still be on their way), or after
    ``wait_s``."""
    deadline = time.perf_counter() + wait_s
    while True:
        rows = charged_payments(url, list(stats.trades))
        unsettled = [
            no
            for no, n in stats.accepted.items()
            if n and not sum(rows[no][s] for s in CHARGED_STATES)
        ]
        if not unsettled or time.perf_counter() > deadline:
            return rows
        time.sleep(0.5)


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report_load(stats: LoadStats, seconds: float, concurrency: int, late: int) -> None:
    rate = stats.completed / seconds if seconds else 0.0
    create_p99 = pct(stats.latencies["create"], 0.99)
    print(
        f"\n{stats.completed} payments paid end to end in {seconds:.1f} s with {concurrency}"
        f" workers ({late} of the decisions with a late fee)"
    )
    print(
        f"  payments/s end to end: {rate:7.1f}   (target >= {PAYMENT_TARGET[0]:.0f}:"
        f" {_verdict(rate >= PAYMENT_TARGET[0])})"
    )
    print(
        f"  create p99: {create_p99:.1f} ms   (target <= {PAYMENT_TARGET[1]:.0f} ms:"
        f" {_verdict(create_p99 <= PAYMENT_TARGET[1])})"
    )
    print(
        f"  created {stats.created} ({stats.with_late_fee} with a late fee), paid at the fake"
        f" {stats.paid_at_provider}, visible as paid {stats.completed}; first notification"
        f" not acknowledged: {stats.notify_unacknowledged}"
    )
    print("  step            n      p50 ms   p99 ms")
    for step in STEPS:
        values = stats.latencies[step]
        med = statistics.median(values) if values else float("nan")
        print(f"  {step:<12} {len(values):5d}  {med:8.1f} {pct(values, 0.99):8.1f}")
    errors = ", ".join(f"{k} x{v}" for k, v in stats.errors.most_common()) or "none"
    print(f"  errors: {errors}")
    print(f"  requests sent again after a dropped keep-alive connection: {dict(RESENT) or 0}")


def report_storm(stats: StormStats, rows: Mapping[str, Counter[str]], size: int) -> int:
    """Print the storm's figures; the double-charge count."""
    double = [
        no
        for no in stats.trades
        if stats.accepted[no] > 1 or sum(rows[no][s] for s in CHARGED_STATES) > 1
    ]
    rounds = len(stats.trades)
    creates = sum(stats.codes.values())
    print(
        f"\nstorm (R-PAY-3): {rounds} rounds of {size} concurrent creates in"
        f" {stats.seconds:.1f} s ({creates / stats.seconds if stats.seconds else 0:.0f} creates/s)"
    )
    print(f"  double charges: {len(double)}   (must be 0: {_verdict(not double)})")
    for no in double[:10]:
        print(f"    {no}: {stats.accepted[no]} pays accepted, payments {dict(rows[no])}")
    print("  rounds won by: " + ", ".join(f"{k} x{v}" for k, v in stats.winners.most_common()))
    print("  create answers: " + ", ".join(f"{k} x{v}" for k, v in stats.codes.most_common()))
    trades = Counter(len(t) for t in stats.trades.values())
    print(
        "  distinct trade_nos per decision: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(trades.items()))
    )
    print(
        "  pay answers at the fake: "
        + ", ".join(f"{k} x{v}" for k, v in stats.pay_answers.most_common())
    )
    states: Counter[str] = Counter()
    for counts in rows.values():
        states.update(counts)
    charged = Counter(sum(rows[no][s] for s in CHARGED_STATES) for no in stats.trades)
    print(f"  requests sent again after a dropped connection (whole run): {dict(RESENT) or 0}")
    print("  payments by state: " + ", ".join(f"{k} x{v}" for k, v in states.most_common()))
    print(
        "  charged payments per decision: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(charged.items()))
    )
    return len(double)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def service_pids(cluster: Cluster) -> dict[str, int]:
    """The processes whose CPU the report breaks down (our database's backends apart)."""
    pids = {
        "gateway": find_service_pid(cluster, "gateway", "cqgateway"),
        "payment": find_service_pid(cluster, "payment", "cqpayment"),
        "query": find_service_pid(cluster, "query", "cqquery"),
        "adjudication": find_service_pid(cluster, "adjudication", "cqadjudication"),
        "fake alipay": find_service_pid(cluster, "fake-alipay", "fake-alipay"),
        # the launcher's whole tree: the above, follow, registry and the Kafka broker
        CLUSTER: int(cluster.info["launcher_pid"]),
    }
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] == "postgres" and proc.info["ppid"] == 1:
            pids[PG_SERVER] = proc.pid
            break
    return pids


def report_cpu(sampler: ProcessSampler, pg: BackendCpu, client_cores: float, rate: float) -> None:
    """Cores used during the load, and CPU ms per payment (what the rate costs each process)."""
    cores = dict(sampler.cores)
    machine, cluster = cores.pop("machine"), cores.pop(CLUSTER)
    server = cores.pop(PG_SERVER, float("nan"))
    ours = cluster + pg.cores + client_cores
    print(
        "  CPU in cores during the load: "
        + ", ".join(f"{name} {c:.2f}" for name, c in cores.items())
        + f"; the whole cluster {cluster:.2f} (these, follow, registry, Kafka);"
        f" postgres backends of {DB_NAME} {pg.cores:.2f} (the server, every database:"
        f" {server:.2f}); this load generator {client_cores:.2f}; the machine {machine:.2f}"
        f" of {psutil.cpu_count()}, about {max(0.0, machine - ours):.2f} of it other sessions'"
    )
    if rate > 0:
        per = {**cores, "cluster": cluster, "postgres": pg.cores, "load generator": client_cores}
        print(
            "  CPU ms per payment: "
            + ", ".join(f"{name} {c * 1000 / rate:.1f}" for name, c in per.items())
            + f"; cluster + postgres + load generator {ours * 1000 / rate:.1f}"
        )


async def bench(cluster: Cluster, url: str, args: argparse.Namespace) -> int:
    limits = httpx.Limits(
        max_connections=max(args.concurrency, args.storm_concurrency) + 8,
        max_keepalive_connections=max(args.concurrency, args.storm_concurrency) + 8,
    )
    fake_url = str(cluster.info["fake_alipay_url"])
    async with (
        httpx.AsyncClient(base_url=cluster.gateway_url, timeout=30, limits=limits) as client,
        httpx.AsyncClient(base_url=fake_url, timeout=30, limits=limits) as fake,
    ):
        t = time.perf_counter()
        owners = unique_owners(args.payments + args.storm_rounds, taken_keys(url))
        await import_owners(cluster.env["REGISTRY_SERVICE_ADDR"], owners)
        decided = await record_decisions(client, owners, args.setup_wait)
        headers = await login(client, [o.alipay_user_id for o in owners])
        await wait_known(client, decided, headers, args.setup_wait)
        strangers_ids = [f"20889{i:011d}" for i in range(args.storm_concurrency)]
        strangers = list((await login(client, strangers_ids)).values())
        print(
            f"setup: {len(decided)} decisions recorded and known to payment in"
            f" {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        load_set, storm_set = decided[: args.payments], decided[args.payments :]

    connections = max(args.concurrency, args.storm_concurrency) + 8
    async with (
        FastClient(cluster.gateway_url, connections) as client,
        FastClient(fake_url, connections) as fake,
    ):
        sampler = ProcessSampler(service_pids(cluster))
        pg = BackendCpu(DB_NAME)
        stats, seconds = await run_load(
            url, client, fake, load_set, headers, args.concurrency, args.wait, args.poll,
            sampler, pg, args.profile, PlumbingCounter(cluster.info["metrics_urls"], url),
        )  # fmt: skip
        report_load(stats, seconds, args.concurrency, sum(d.late for d in load_set))
        report_cpu(sampler, pg, stats.client_cores, stats.completed / seconds)
        if stats.plumbing is not None:
            print(stats.plumbing.line("payment"))

        if not storm_set:
            return 0
        print(f"\nstorm: {len(storm_set)} rounds ...", flush=True)
        storm_stats = await storm(
            client, fake, storm_set, headers, strangers, args.storm_concurrency
        )
    rows = settled_storm(url, storm_stats, args.wait)
    return report_storm(storm_stats, rows, args.storm_concurrency)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--storm-rounds", type=int, default=1000)
    parser.add_argument("--storm-concurrency", type=int, default=50)
    parser.add_argument("--wait", type=float, default=30.0, help="s to see a payment as paid")
    parser.add_argument(
        "--poll", type=float, default=0.1, help="s between reads of the detail while waiting"
    )
    parser.add_argument(
        "--setup-wait", type=float, default=180.0, help="s for the setup's events to arrive"
    )
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument("--profile", action="store_true", help="py-spy the services")
    args = parser.parse_args(argv)

    drop_database(args.pg_server, DB_NAME)  # a leftover of an interrupted run
    create_database(args.pg_server, DB_NAME)
    url = with_database(args.pg_server, DB_NAME)
    try:
        with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
            redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis.log")
            try:
                env = {
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_server.url,
                    # R-PAY-6 would refuse every payment 22:00-00:30 Beijing time
                    "PAYMENT_MAINTENANCE_WINDOW": "",
                    "SANDBOX_MODE": "true",
                }
                log = bench_dir() / "cluster-payment.log"
                with Cluster(env, log_path=log) as cluster:
                    print(f"cluster ready in {cluster.startup_s:.1f} s (log {log})", flush=True)
                    asyncio.run(bench(cluster, url, args))
            finally:
                redis_server.close()
    finally:
        drop_database(args.pg_server, DB_NAME)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
