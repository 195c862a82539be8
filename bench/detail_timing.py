"""Benchmark: does a violation's detail tell a foreign id from a missing one by its time?

`GET /api/v1/violations/{id}` must answer someone else's violation exactly as an id that
does not exist (R-Q-1: the same 404) — and in the same time, or the time is an oracle for
which ids exist. This script starts the whole cluster in this process, as the
integration tests do (tests/conftest.py: every service's runtime on a free port, the
gateway through httpx's ASGI transport; PostgreSQL, Redis and Tansu from the dev stack,
on a throw-away database and a Redis db other than 0), registers an owner with a camera record and an
on-site ticket, and a stranger, and then asks, as the stranger, alternately:

- **foreign**: the owner's violations (each in turn), which exist;
- **missing**: a fresh random UUID each time;
- **own** (for scale): the owner asking for their own violation (200, which also asks
  adjudication whether it can be handled online).

Requests alternate between the cases (so drift in the machine's load hits both alike),
after a warm-up. It prints, per case, the median, p10 and p90 in ms, and the difference
and ratio of the two 404 medians. It asserts nothing about time (tests never do; the
equal cost is proven by counting statements and Redis commands in
tests/integration/test_violation_query.py).

    .venv/bin/python bench/detail_timing.py [--requests 200] [--warmup 30]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cqcommon.migrations import apply_migrations
from cqcommon.settings import Settings
from cqdev.pytest_plugin import migration_targets
from cqdev.stack import (
    Stack,
    create_database,
    drop_database,
    with_database,
    with_redis_db,
)
from cqdev.testing import (
    Cluster,
    eventually,
    in_process_cluster,
    new_owner,
    violation_body,
    violation_code_record,
)


async def record(cluster: Cluster, plate_number: str, **overrides: Any) -> str:
    """A violation recorded at the counter, once adjudication knows the vehicle: its id."""
    day = datetime.now(UTC).date() - timedelta(days=3)
    defaults = {"source_system": "bench", "occurred_at": f"{day.isoformat()}T08:30:00+08:00"}
    body = violation_body(plate_number, uuid.uuid4().hex, **(defaults | overrides))
    r = await cluster.record_violation(body)
    r.raise_for_status()
    return str(r.json()["violation_id"])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def measure(cluster: Cluster, requests: int, warmup: int) -> None:
    owner, stranger = new_owner(), new_owner()
    await cluster.import_records([*owner.records(), *stranger.records(), violation_code_record()])
    decided = datetime.now(UTC).date() - timedelta(days=1)
    camera = await record(cluster, owner.plate_number)
    ticket = await record(
        cluster,
        owner.plate_number,
        source="on_site",
        licence_no=owner.id_number,
        decision_no="500101" + "".join(random.choice("0123456789") for _ in range(10)),
        decision_date=decided.isoformat(),
        occurred_at=f"{(decided - timedelta(days=1)).isoformat()}T08:30:00+08:00",
    )
    owner_headers = await cluster.login(owner.alipay_user_id)
    stranger_headers = await cluster.login(stranger.alipay_user_id)

    async def shown() -> bool:
        r = await cluster.http.get(f"/api/v1/violations/{ticket}", headers=owner_headers)
        return r.status_code == 200

    await eventually(shown)
    foreign_ids = [camera, ticket]

    async def timed(path: str, headers: dict[str, str], expect: int) -> float:
        start = time.perf_counter()
        r = await cluster.http.get(path, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if r.status_code != expect:
            raise RuntimeError(f"{path}: {r.status_code} {r.text}")
        return elapsed

    cases: dict[str, Callable[[int], Awaitable[float]]] = {
        "foreign (exists, 404)": lambda i: timed(
            f"/api/v1/violations/{foreign_ids[i % 2]}", stranger_headers, 404
        ),
        "missing (random, 404)": lambda i: timed(
            f"/api/v1/violations/{uuid.uuid4()}", stranger_headers, 404
        ),
        "own (200, for scale)": lambda i: timed(
            f"/api/v1/violations/{foreign_ids[i % 2]}", owner_headers, 200
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(warmup + requests):
        # a shuffled order each round, so neither case always follows the other
        order = list(cases.items())
        random.shuffle(order)
        for name, run in order:
            elapsed = await run(i)
            if i >= warmup:
                times[name].append(elapsed)

    print(f"GET /api/v1/violations/{{id}}, {requests} requests per case, interleaved")
    print(f"{'case':<24} {'median':>8} {'p10':>8} {'p90':>8}  (ms)")
    for name, values in times.items():
        print(
            f"{name:<24} {statistics.median(values):8.3f} {pct(values, 0.1):8.3f}"
            f" {pct(values, 0.9):8.3f}"
        )
    foreign = statistics.median(times["foreign (exists, 404)"])
    missing = statistics.median(times["missing (random, 404)"])
    print(
        f"foreign - missing median: {foreign - missing:+.3f} ms"
        f" (ratio {foreign / missing:.3f}); before this change: 2.5 ms vs 1.85 ms"
    )


async def main(requests: int, warmup: int) -> None:
    stack = Stack(kafka="own", ephemeral=True).start()
    dbname = f"cqbench_detail_{uuid.uuid4().hex[:8]}"
    create_database(stack.database_url, dbname)
    database_url = with_database(stack.database_url, dbname)
    try:
        for schema, folder in migration_targets():
            await apply_migrations(database_url, schema, folder)
        settings = Settings(
            database_url=database_url,
            # a db other than make run's 0; never flushed (other runs may share it): every
            # key here names fresh random ids, and cached values expire
            redis_url=with_redis_db(stack.redis_url, random.randint(1, 15)),
            kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
            kafka_topic_prefix=f"cqbench-{dbname}.",
            kafka_session_timeout_ms=6000,
            otel_exporter="none",
        )
        async with in_process_cluster(settings) as cluster:
            await measure(cluster, requests, warmup)
    finally:
        drop_database(stack.database_url, dbname)
        stack.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.requests, args.warmup))
