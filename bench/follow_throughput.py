"""Benchmark: follows per second end to end with the generated data (issue 10, R-FOL-1..4,
R-SMS-1).

One follow is a friend asking to follow a vehicle (``POST /api/v1/follows/vehicles`` with
its plate and the VIN's last 6 characters) until the friend can read that vehicle's
violations (``GET /api/v1/violations?vehicle_id=`` answers 200). Half go through the
**approval** flow (the owner is on the platform: the owner lists ``GET
/api/v1/follow-requests/incoming`` and approves ``POST .../{id}/approve``; the read model
learns it from ``FollowStarted`` through Kafka, so the friend polls), half through the
**SMS** flow (the owner is not on the platform but has a phone on record: staff read the
code from the recording adapter's sandbox outbox ``GET /internal/v1/sandbox/sms?phone=``
and the friend submits it ``POST .../{id}/sms-code``, which answers once the read model
agrees).

It works on a throw-away copy (``CREATE DATABASE … TEMPLATE``) of the generated 100k data
set of ``bench/query_read.py`` (generated first when missing; since v3 it holds the follow
service's registry copy), so every run starts from the same state, and starts the whole
cluster (``benchlib.Cluster``: free ports, sandbox mode, the recording SMS adapter) on it
with a redis-server of its own. The pick (not timed, from the follow service's own copy):

- requesters: synthetic people with an Alipay id, each asking ``--per-requester`` follows
  (default 2: within the 2 active follows and 3 chances a year of R-FOL-3, so all should
  succeed; more makes quota refusals, which are counted by quota);
- targets: vehicles of other people, one follow each (R-FOL-4's 3 followers never bind);
  approval targets' owners have an Alipay id, SMS targets' owners have none and a phone no
  one else has (R-SMS-1 allows one SMS per phone per 60 s: each phone is asked once).

It prints follows/s (readable follows per second of the run), p50/p99 of each step and
end to end per flow, the refusals by step and code, the cores used during the load by the
gateway, follow, query, PostgreSQL (every backend of the server) and this load generator,
the load average, and three checks of the follow schema afterwards that must print 0:
users over the active-follow limit, vehicles over the follower limit, users over the
yearly chances. It asserts nothing.

    .venv/bin/python bench/follow_throughput.py [--follows 1000] [--concurrency 32]
        [--per-requester 2] [--wait 30] [--poll 0.05]
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
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import psycopg
from cqcommon.settings import Settings
from cqdev.stack import drop_database, start_own_redis, with_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Cluster
from bench.benchlib.handling import login, pct, send
from bench.query_read import (
    DEFAULT_PG_SERVER,
    Dataset,
    ProcessSampler,
    bench_dir,
    find_service_pid,
    prepare,
)

_T = TypeVar("_T")
COPY_DB = "cqbench_follow"
PICK_SEED = 20251121  # which people and vehicles are picked: the same ones every run
FLOWS = {
    "approval": ("request", "incoming", "approve", "readable"),
    "sms": ("request", "outbox", "code", "readable"),
}


@dataclass(frozen=True)
class Follow:
    """One follow to make: who asks, for which vehicle, and how the owner consents."""

    flow: str  # "approval" | "sms"
    requester: str  # Alipay user id
    vehicle_id: str
    plate_type: str
    plate_number: str
    vin: str
    owner: str  # the owner's Alipay user id (approval) or phone on record (SMS)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {
            f"{flow}:{step}": [] for flow, steps in FLOWS.items() for step in (*steps, "e2e")
        }
    )
    refusals: Counter[str] = field(default_factory=Counter)
    readable: Counter[str] = field(default_factory=Counter)
    requests: int = 0  # HTTP requests sent during the load, polls included
    client_cores: float = 0.0


def copy_dataset(ds: Dataset) -> str:
    """A fresh copy of the data set's database (the template must have no other
    connection, so the data set's are ended first); its URL. Its follow copy is analysed."""
    drop_database(ds.url, COPY_DB)
    with psycopg.connect(with_database(ds.url, "postgres"), autocommit=True) as conn:
        sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
        conn.execute(sql, (ds.dbname,))
        conn.execute(f'CREATE DATABASE "{COPY_DB}" TEMPLATE "{ds.dbname}"')
    url = with_database(ds.url, COPY_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE follow.persons, follow.vehicles, follow.licences")
    return url


def pick(url: str, follows: int, per_requester: int) -> list[Follow]:
    """The follows to make (see the module doc), read from the follow service's copy."""
    with psycopg.connect(url, autocommit=True) as conn:
        on_platform = conn.execute(
            "SELECT p.alipay_user_id, v.vehicle_id::text, v.plate_type, v.plate_number, v.vin"
            " FROM follow.persons p JOIN follow.vehicles v ON v.owner_person_id = p.person_id"
            " WHERE p.alipay_user_id LIKE '20881%%' ORDER BY p.alipay_user_id"
        ).fetchall()
        by_sms = conn.execute(
            "SELECT p.phone, v.vehicle_id::text, v.plate_type, v.plate_number, v.vin"
            " FROM follow.persons p JOIN follow.vehicles v ON v.owner_person_id = p.person_id"
            " WHERE p.alipay_user_id IS NULL AND p.phone IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM follow.persons o WHERE o.phone = p.phone"
            "  AND o.person_id <> p.person_id)"
            " ORDER BY p.phone"
        ).fetchall()
    rng = random.Random(PICK_SEED)
    approvals, smses = follows // 2, follows - follows // 2
    requesters_needed = -(-follows // per_requester)
    people = rng.sample(on_platform, min(len(on_platform), approvals + requesters_needed))
    if len(people) < approvals + requesters_needed or len(by_sms) < smses:
        raise SystemExit(
            f"not enough people in the data set for {follows} follows: {len(on_platform)} on"
            f" the platform, {len(by_sms)} owners with a phone of their own"
        )
    targets = [("approval", row) for row in people[:approvals]]
    targets += [("sms", row) for row in rng.sample(by_sms, smses)]
    rng.shuffle(targets)
    requesters = [str(row[0]) for row in people[approvals:]]  # none of them owns a target
    return [
        Follow(flow, requesters[i // per_requester], str(v), str(t), str(n), str(vin), str(o))
        for i, (flow, (o, v, t, n, vin)) in enumerate(targets)
    ]


def _refusal(step: str, r: httpx.Response) -> str:
    """``step:status:CODE`` (and the quota that refused, if one did)."""
    try:
        error = r.json()["error"]
        code = str(error["code"])
        quota = (error.get("details") or {}).get("quota")
    except Exception:
        code, quota = "?", None
    return f"{step}:{r.status_code}:{code}" + (f"({quota})" if quota else "")


async def follow_one(
    client: httpx.AsyncClient,
    f: Follow,
    headers: dict[str, dict[str, str]],
    staff: dict[str, str],
    stats: Stats,
    wait_s: float,
    poll_s: float,
) -> None:
    friend = headers[f.requester]
    started = t = time.perf_counter()

    def took(step: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stats.latencies[f"{f.flow}:{step}"].append((now - t) * 1000)
        t = now

    def refused(step: str, r: httpx.Response) -> None:
        stats.refusals[_refusal(f"{f.flow}:{step}", r)] += 1

    async def http(method: str, url: str, **kw: Any) -> httpx.Response:
        stats.requests += 1
        return await send(client, method, url, **kw)

    body = {"plate_type": f.plate_type, "plate_number": f.plate_number, "vin": f.vin[-6:]}
    r = await http("POST", "/api/v1/follows/vehicles", json=body, headers=friend)
    took("request")
    if r.status_code != 201:
        return refused("request", r)
    request_id = r.json()["request_id"]
    if f.flow == "approval":
        owner = headers[f.owner]
        r = await http("GET", "/api/v1/follow-requests/incoming", headers=owner)
        took("incoming")
        if r.status_code != 200:
            return refused("incoming", r)
        if request_id not in {x["request_id"] for x in r.json()["requests"]}:
            stats.refusals["approval:incoming:not listed"] += 1
            return
        path = f"/api/v1/follow-requests/{request_id}/approve"
        r = await http("POST", path, headers=owner)
        took("approve")
        if r.status_code != 200:
            return refused("approve", r)
    else:
        params = {"phone": f.owner, "limit": "1"}
        r = await http("GET", "/internal/v1/sandbox/sms", params=params, headers=staff)
        took("outbox")
        messages = r.json().get("messages") if r.status_code == 200 else None
        if not messages:
            return refused("outbox", r)
        code = {"code": str(messages[0]["params"]["code"])}
        path = f"/api/v1/follow-requests/{request_id}/sms-code"
        r = await http("POST", path, json=code, headers=friend)
        took("code")
        if r.status_code != 201:
            return refused("code", r)
    # readable: the follower's very next read, then polls while the read model catches up
    deadline = time.perf_counter() + wait_s
    params = {"vehicle_id": f.vehicle_id}
    while True:
        r = await http("GET", "/api/v1/violations", params=params, headers=friend)
        if r.status_code == 200:
            took("readable")
            stats.latencies[f"{f.flow}:e2e"].append((time.perf_counter() - started) * 1000)
            stats.readable[f.flow] += 1
            return
        if r.status_code != 404 or time.perf_counter() > deadline:
            return refused("readable", r)
        await asyncio.sleep(poll_s)


async def staff_login(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"username": "clerk01", "password": Settings().sandbox_staff_password}
    r = await send(client, "POST", "/internal/v1/auth/login", json=body)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def timed_workers(
    items: Sequence[_T], concurrency: int, one: Callable[[_T], Awaitable[None]]
) -> tuple[float, float]:
    """``one(item)`` for every item, by ``concurrency`` workers that each take the next one;
    the seconds it took and the cores this process (the load generator: its children are
    the cluster) used meanwhile."""
    pending = iter(items)  # one event loop: taking the next item needs no lock

    async def worker() -> None:
        for item in pending:
            await one(item)

    me = psutil.Process()
    cpu0, t0 = sum(me.cpu_times()[:2]), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return seconds, (sum(me.cpu_times()[:2]) - cpu0) / seconds


async def run_load(
    gateway: str,
    follows: list[Follow],
    concurrency: int,
    wait_s: float,
    poll_s: float,
    sampler: ProcessSampler,
) -> tuple[Stats, float]:
    limits = httpx.Limits(max_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        users = sorted(
            {f.requester for f in follows} | {f.owner for f in follows if f.flow == "approval"}
        )
        headers = await login(client, users)
        staff = await staff_login(client)
        print(f"    logged in {len(headers)} users and clerk01", flush=True)
        stats = Stats()

        async def one(f: Follow) -> None:
            await follow_one(client, f, headers, staff, stats, wait_s, poll_s)

        with sampler:
            seconds, stats.client_cores = await timed_workers(follows, concurrency, one)
        return stats, seconds


def service_pids(cluster: Cluster) -> dict[str, int]:
    """The processes whose CPU the report breaks down: the gateway, the two services a
    follow goes through, and PostgreSQL (its postmaster and every backend)."""
    pids = {
        "gateway": find_service_pid(cluster, "gateway", "cqgateway"),
        "follow": find_service_pid(cluster, "follow", "cqfollow"),
        "query": find_service_pid(cluster, "query", "cqquery"),
    }
    postmasters = (
        p.pid
        for p in psutil.process_iter(["name", "ppid"])
        if p.info["name"] == "postgres" and p.info["ppid"] == 1
    )
    pids["postgres"] = next(postmasters, 0)
    return {name: pid for name, pid in pids.items() if pid}


def invariants(url: str) -> dict[str, int]:
    """The quotas checked in the follow service's own records after the run (R-FOL-3, 4):
    each count must be 0. Limits as the cluster ran them (the same environment)."""
    limits = Settings()
    active = (
        "target = 'vehicle' AND ended_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
    )
    year_start = (
        "date_trunc('year', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'"
    )
    checks = {
        f"users over {limits.follow_max_active} active vehicle follows": (
            f"SELECT follower_key FROM follow.follows WHERE {active}"
            f" GROUP BY follower_key HAVING count(*) > {limits.follow_max_active}"
        ),
        f"vehicles over {limits.vehicle_max_followers} followers": (
            f"SELECT vehicle_id FROM follow.follows WHERE {active}"
            f" GROUP BY vehicle_id HAVING count(*) > {limits.vehicle_max_followers}"
        ),
        f"users over {limits.follow_chances_per_year} activations this year": (
            f"SELECT follower_key FROM follow.follows WHERE target = 'vehicle'"
            f" AND started_at >= {year_start}"
            f" GROUP BY follower_key HAVING count(*) > {limits.follow_chances_per_year}"
        ),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            name: int(conn.execute(f"SELECT count(*) FROM ({sql}) t").fetchone()[0])  # type: ignore[index]
            for name, sql in checks.items()
        }


def report(
    stats: Stats,
    seconds: float,
    follows: Sequence[Follow],
    checks: dict[str, int],
    concurrency: int,
) -> None:
    asked = Counter(f.flow for f in follows)
    done = sum(stats.readable.values())
    print(
        f"\n{len(follows)} follows asked ({asked['approval']} approval, {asked['sms']} SMS) by"
        f" {len({f.requester for f in follows})} requesters with {concurrency} workers"
    )
    print(
        f"  readable end to end: {done} in {seconds:.1f} s = {done / seconds:.1f} follows/s"
        f"  (approval {stats.readable['approval']}, SMS {stats.readable['sms']});"
        f" {stats.requests} HTTP requests, {stats.requests / seconds:.0f}/s"
    )
    print("  step                   n    p50 ms   p99 ms")
    for step, values in stats.latencies.items():
        med = statistics.median(values) if values else float("nan")
        print(f"  {step:<19} {len(values):5d}  {med:8.1f} {pct(values, 0.99):8.1f}")
    refused = ", ".join(f"{k} x{v}" for k, v in stats.refusals.most_common()) or "none"
    print(f"  refusals: {refused}")
    for name, value in checks.items():
        print(f"  {name}: {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--follows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--per-requester", type=int, default=2, help="follows each requester asks for"
    )
    parser.add_argument("--wait", type=float, default=30.0, help="s until readable, at most")
    parser.add_argument("--poll", type=float, default=0.05, help="s between reads while waiting")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    args = parser.parse_args(argv)
    ds = Dataset("100k", 100_000, args.pg_server)
    prepare(ds, skip_generate=False)
    url = copy_dataset(ds)
    print(f"copied {ds.dbname} to {COPY_DB}", flush=True)
    try:
        follows = pick(url, args.follows, max(1, args.per_requester))
        with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
            redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis.log")
            try:
                env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url, "SANDBOX_MODE": "true"}
                log = bench_dir() / "cluster-follow.log"
                with Cluster(env, log_path=log) as cluster:
                    print(f"cluster ready in {cluster.startup_s:.1f} s (log {log})", flush=True)
                    sampler = ProcessSampler(service_pids(cluster))
                    load0 = os.getloadavg()
                    stats, seconds = asyncio.run(
                        run_load(
                            cluster.gateway_url,
                            follows,
                            args.concurrency,
                            args.wait,
                            args.poll,
                            sampler,
                        )
                    )
                    load1 = os.getloadavg()
            finally:
                redis_server.close()
        report(stats, seconds, follows, invariants(url), args.concurrency)
        print(
            "  CPU in cores during the load: "
            + ", ".join(f"{name} {cores:.2f}" for name, cores in sampler.cores.items())
            + f", this load generator {stats.client_cores:.2f}"
            + " (of 2; postgres: every backend of the server)"
        )
        print(
            f"  load average (1/5/15 min) before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f},"
            f" after {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}"
        )
    finally:
        drop_database(ds.url, COPY_DB)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
