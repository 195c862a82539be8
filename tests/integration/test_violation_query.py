"""The violation query end to end: registry and adjudication events, and the events of
services built later (payment, follow, handling) published as their relays will, are
applied by the query read model and read back through the gateway — real PostgreSQL,
Redis and Kafka throughout (R-Q-1…5, R-X-1, R-PAY-2)."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from cqcommon.clock import SystemClock, today_in_shanghai
from cqcommon.db import Conn
from cqcommon.errors import DomainError
from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    STATUSES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqdev.testing import (
    Cluster,
    Owner,
    eventually,
    fetch_rows,
    new_owner,
    violation_body,
    violation_code_record,
)
from cqquery.adapters.cache import ReadModelCache
from cqquery.adapters.postgres_read_model import PostgresReadModel
from cqquery.bootstrap import build_views
from cqquery.domain.model import Caller
from cqquery.domain.results import OnlineHandlingHint
from cqquery.ports import Eligibility
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.follow.v1 import events_pb2 as fol
from cqtraffic.payment.v1 import events_pb2 as pay
from google.protobuf.message import Message

pytestmark = pytest.mark.integration

TODAY = today_in_shanghai(SystemClock())


# -- helpers ----------------------------------------------------------------------------
def two_strangers() -> tuple[Owner, Owner]:
    """Two owners who share no name (the scan for unmasked names needs that)."""
    a, b = new_owner(), new_owner()
    while b.name == a.name:
        b = new_owner()
    return a, b


async def registered(cluster: Cluster, *owners: Owner) -> None:
    records = [r for o in owners for r in o.records()]
    await cluster.import_records([*records, violation_code_record()])


async def record(
    cluster: Cluster, owner: Owner, record_id: str, **overrides: Any
) -> dict[str, Any]:
    """Record a violation through the counter API once adjudication knows the vehicle."""
    body = violation_body(owner.plate_number, f"{record_id}-{uuid.uuid4().hex[:8]}", **overrides)
    r = await cluster.record_violation(body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def decision_no() -> str:
    return "500101" + "".join(random.choice("0123456789") for _ in range(10))


async def on_site_decided(
    cluster: Cluster, owner: Owner, record_id: str, *, decided: date
) -> dict[str, Any]:
    """An on-site ticket: on the owner's licence, decided at once (R-PAY-1); committed the
    day before its decision (a decision cannot predate its violation)."""
    return await record(
        cluster,
        owner,
        record_id,
        occurred_at=f"{(decided - timedelta(days=1)).isoformat()}T08:30:00+08:00",
        source="on_site",
        licence_no=owner.id_number,
        decision_no=decision_no(),
        decision_date=decided.isoformat(),
    )


async def visible(cluster: Cluster, headers: dict[str, str], **params: str) -> list[Any]:
    """The caller's list once the read model has the subject's violations."""

    async def listed() -> Any:
        r = await cluster.http.get("/api/v1/violations", params=params, headers=headers)
        return r.json()["violations"] if r.status_code == 200 and r.json()["violations"] else None

    return list(await eventually(listed))


async def applied(cluster: Cluster, envelope: Any) -> None:
    async def probe() -> bool:
        return await cluster.applied(envelope.event_id)

    await eventually(probe)


async def publish(cluster: Cluster, payload: Message, aggregate_id: str, **kw: Any) -> Any:
    env = await cluster.publish(payload, aggregate_id=aggregate_id, **kw)
    await applied(cluster, env)
    return env


def follow_started(follower: Owner, *, vehicle_id: str = "", licence_id: str = "") -> Any:
    return fol.FollowStarted(
        follow_id=str(uuid.uuid4()),
        follower_person_id=follower.person_id,
        follower_user_id=follower.alipay_user_id,
        target=fol.FOLLOW_TARGET_VEHICLE if vehicle_id else fol.FOLLOW_TARGET_LICENCE,
        vehicle_id=vehicle_id,
        licence_id=licence_id,
        consent="owner_app" if vehicle_id else "none",
        started_at=timestamp_to_proto(datetime.now(UTC)),
    )


def fine_paid(violation: dict[str, Any], *, payment_id: str | None = None) -> Any:
    return pay.FinePaid(
        payment_id=payment_id or str(uuid.uuid4()),
        decision_no=violation["decision_no"],
        violation_id=violation["violation_id"],
        amount_fen=violation["fine_fen"],
        fine_fen=violation["fine_fen"],
        paid_at=timestamp_to_proto(datetime.now(UTC)),
        channel="sandbox",
    )


async def read_model_rows(cluster: Cluster, violation_id: str) -> Any:
    """Everything the read model holds about one violation (for before/after compares)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(cluster.settings.database_url) as conn:
        rows = {}
        for table in (
            "violations",
            "violation_handlings",
            "violation_payments",
            "violation_disputes",
        ):
            cur = await conn.execute(
                f"SELECT to_jsonb(t) FROM query.{table} t WHERE violation_id = %s ORDER BY 1::text",
                (violation_id,),
            )
            rows[table] = sorted(json.dumps(r[0], sort_keys=True) for r in await cur.fetchall())
        return rows


# -- R-Q-1 access ---------------------------------------------------------------------------
async def test_user_a_gets_404_on_every_id_of_user_b(cluster: Cluster) -> None:
    """R-Q-1 (BOLA): A's token on each of B's vehicle, licence and violation ids is 404,
    the same answer as an id that does not exist; B sees them all."""
    a, b = new_owner(), new_owner()
    await registered(cluster, a, b)
    camera = await record(cluster, b, "bola-cam")
    ticket = await on_site_decided(cluster, b, "bola-ticket", decided=TODAY)
    b_headers = await cluster.login(b.alipay_user_id)
    await visible(cluster, b_headers, vehicle_id=b.vehicle_id)
    await visible(cluster, b_headers, licence_id=b.licence_id)

    a_headers = await cluster.login(a.alipay_user_id)
    missing = str(uuid.uuid4())
    probes = [
        ("/api/v1/violations", {"vehicle_id": b.vehicle_id}),
        ("/api/v1/violations", {"licence_id": b.licence_id}),
        ("/api/v1/violations", {"vehicle_id": b.licence_id}),  # an id of another kind
        ("/api/v1/violations", {"licence_id": b.person_id}),
        (f"/api/v1/violations/{camera['violation_id']}", {}),
        (f"/api/v1/violations/{ticket['violation_id']}", {}),
        (f"/api/v1/violations/{b.vehicle_id}", {}),
        ("/api/v1/violations", {"vehicle_id": missing}),
        (f"/api/v1/violations/{missing}", {}),
    ]
    bodies = []
    for path, params in probes:
        r = await cluster.http.get(path, params=params, headers=a_headers)
        assert r.status_code == 404, (path, params, r.text)
        bodies.append(r.json())
    assert all(body == bodies[0] for body in bodies), "a foreign id must look like a missing one"

    for violation in (camera, ticket):
        r = await cluster.http.get(
            f"/api/v1/violations/{violation['violation_id']}", headers=b_headers
        )
        assert r.status_code == 200, r.text


async def test_following_and_proof_grant_access_and_everything_else_is_masked(
    cluster: Cluster,
) -> None:
    """R-Q-1 and R-Q-4: a follower and a prover see B's violations; no response to them
    carries B's ID number, phone or name unmasked."""
    a, b = two_strangers()
    await registered(cluster, a, b)
    await record(cluster, b, "mask-cam")
    await on_site_decided(cluster, b, "mask-ticket", decided=TODAY)
    a_headers = await cluster.login(a.alipay_user_id)
    responses: list[str] = []

    r = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": b.vehicle_id}, headers=a_headers
    )
    assert r.status_code == 404

    # followed (the follow service's event, published as its relay will)
    follow = follow_started(a, vehicle_id=b.vehicle_id)
    await publish(cluster, follow, follow.follow_id)
    listed = await visible(cluster, a_headers, vehicle_id=b.vehicle_id)
    responses.append(json.dumps(listed, ensure_ascii=False))
    detail = await cluster.http.get(
        f"/api/v1/violations/{listed[0]['violation_id']}", headers=a_headers
    )
    assert detail.status_code == 200, detail.text
    responses.append(detail.text)
    me = await cluster.http.get("/api/v1/me", headers=a_headers)
    assert me.status_code == 200, me.text
    responses.append(me.text)
    followed = me.json()["followed_vehicles"]
    assert [v["vehicle_id"] for v in followed] == [b.vehicle_id]
    assert followed[0]["relation"] == "followed"
    assert followed[0]["owner"]["name"] == b.name[0] + "*"
    assert followed[0]["vin"].endswith(b.vin[-6:]) and b.vin not in me.text

    # proven: a licence lookup with name + licence number + file number
    proof = {"name": b.name, "licence_no": b.id_number, "file_no": b.file_no}
    wrong = await cluster.http.post(
        "/api/v1/violations/lookup/licence",
        json=proof | {"file_no": "000000000000"},
        headers=a_headers,
    )
    nobody = await cluster.http.post(
        "/api/v1/violations/lookup/licence",
        json=proof | {"licence_no": a.id_number, "name": "不存在"},
        headers=a_headers,
    )
    assert wrong.status_code == nobody.status_code == 404
    assert wrong.json() == nobody.json(), "a wrong file number must look like no licence"
    r = await cluster.http.get(
        "/api/v1/violations", params={"licence_id": b.licence_id}, headers=a_headers
    )
    assert r.status_code == 404, "a failed proof grants nothing"

    found = await cluster.http.post(
        "/api/v1/violations/lookup/licence", json=proof, headers=a_headers
    )
    assert found.status_code == 200, found.text
    responses.append(found.text)
    assert found.json()["licence"]["relation"] == "proven"
    assert (
        found.json()["licence"]["holder"]["id_number"]
        == b.id_number[:4] + "*" * 10 + b.id_number[-4:]
    )
    r = await cluster.http.get(
        "/api/v1/violations", params={"licence_id": b.licence_id}, headers=a_headers
    )
    assert r.status_code == 200, "a proof grants access to the licence for a while"
    responses.append(r.text)

    # a vehicle lookup with the VIN's last 6
    vproof = {"plate_type": "02", "plate_number": b.plate_number, "vin": b.vin[-6:]}
    found = await cluster.http.post(
        "/api/v1/violations/lookup/vehicle", json=vproof, headers=a_headers
    )
    assert found.status_code == 200, found.text
    responses.append(found.text)

    everything = "\n".join(responses)
    for secret in (b.id_number, b.phone, b.name, b.vin, b.file_no):
        assert secret not in everything, f"unmasked personal data of another person: {secret}"
    for id_number in re.findall(r"\d{17}[\dX]", everything):
        assert id_number == a.id_number, f"unmasked ID number in a response: {id_number}"
    for phone in re.findall(r"(?<!\d)1[3-9]\d{9}(?!\d)", everything):
        assert phone == a.phone, f"unmasked phone in a response: {phone}"

    # the follow ends: access ends with it, through the cache
    ended = fol.FollowEnded(
        follow_id=follow.follow_id,
        follower_person_id=a.person_id,
        follower_user_id=a.alipay_user_id,
        target=fol.FOLLOW_TARGET_VEHICLE,
        vehicle_id=b.vehicle_id,
        reason="unfollowed",
    )
    await publish(cluster, ended, follow.follow_id)
    # the vehicle lookup above granted access too, so the list stays visible to A as proven
    still_proven = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": b.vehicle_id}, headers=a_headers
    )
    assert still_proven.status_code == 200
    me = await cluster.http.get("/api/v1/me", headers=a_headers)
    assert me.json()["followed_vehicles"] == []


async def test_ending_a_follow_ends_access_at_once(cluster: Cluster) -> None:
    """R-Q-1: once FollowEnded is applied, the very next read is 404 (no stale cache)."""
    a, b = new_owner(), new_owner()
    await registered(cluster, a, b)
    await record(cluster, b, "unfollow-cam")
    a_headers = await cluster.login(a.alipay_user_id)
    follow = follow_started(a, vehicle_id=b.vehicle_id)
    await publish(cluster, follow, follow.follow_id)
    await visible(cluster, a_headers, vehicle_id=b.vehicle_id)
    for _ in range(2):  # certainly cached now
        r = await cluster.http.get(
            "/api/v1/violations", params={"vehicle_id": b.vehicle_id}, headers=a_headers
        )
        assert r.status_code == 200
    ended = fol.FollowEnded(
        follow_id=follow.follow_id,
        follower_user_id=a.alipay_user_id,
        target=fol.FOLLOW_TARGET_VEHICLE,
        vehicle_id=b.vehicle_id,
        reason="revoked",
    )
    await publish(cluster, ended, follow.follow_id)
    r = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": b.vehicle_id}, headers=a_headers
    )
    assert r.status_code == 404, r.text


async def test_a_cursor_continues_only_its_own_list_for_its_own_caller(cluster: Cluster) -> None:
    """Signed cursors: B's next-page cursor continues B's list; A, who follows B's vehicle
    and so sees the same list, cannot replay it (400 INVALID_CURSOR), nor can B use a
    vehicle list's cursor on a licence list or an altered cursor; A's own cursor works."""
    a, b = two_strangers()
    await registered(cluster, a, b)
    tickets = [
        await on_site_decided(cluster, b, f"cursor-{n}", decided=TODAY - timedelta(days=n))
        for n in range(3)
    ]
    b_headers = await cluster.login(b.alipay_user_id)

    async def all_listed() -> Any:
        r = await cluster.http.get(
            "/api/v1/violations", params={"licence_id": b.licence_id}, headers=b_headers
        )
        return r.status_code == 200 and len(r.json()["violations"]) == 3

    await eventually(all_listed)
    follow = follow_started(a, vehicle_id=b.vehicle_id)
    await publish(cluster, follow, follow.follow_id)
    a_headers = await cluster.login(a.alipay_user_id)
    newest_first = [t["violation_id"] for t in tickets]

    async def page(headers: dict[str, str], **params: str) -> Any:
        return await cluster.http.get(
            "/api/v1/violations", params={"limit": "1"} | params, headers=headers
        )

    vehicle = {"vehicle_id": b.vehicle_id}
    first = await page(b_headers, **vehicle)
    assert first.status_code == 200, first.text
    assert [v["violation_id"] for v in first.json()["violations"]] == newest_first[:1]
    b_cursor = first.json()["next_cursor"]
    assert b_cursor
    second = await page(b_headers, **vehicle, cursor=b_cursor)
    assert [v["violation_id"] for v in second.json()["violations"]] == newest_first[1:2]

    replayed = await page(a_headers, **vehicle, cursor=b_cursor)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"]["code"] == "INVALID_CURSOR"
    other_list = await page(b_headers, licence_id=b.licence_id, cursor=b_cursor)
    assert other_list.status_code == 400, other_list.text
    assert other_list.json()["error"]["code"] == "INVALID_CURSOR"
    flip = "B" if b_cursor[-5] == "A" else "A"  # inside the signature, never padding bits
    altered = await page(b_headers, **vehicle, cursor=b_cursor[:-5] + flip + b_cursor[-4:])
    assert altered.status_code == 400, altered.text
    assert altered.json()["error"]["code"] == "INVALID_CURSOR"

    a_first = await page(a_headers, **vehicle)
    assert a_first.json()["violations"] == first.json()["violations"], "one shared page"
    a_cursor = a_first.json()["next_cursor"]
    assert a_cursor and a_cursor != b_cursor
    a_second = await page(a_headers, **vehicle, cursor=a_cursor)
    assert a_second.status_code == 200, a_second.text
    assert [v["violation_id"] for v in a_second.json()["violations"]] == newest_first[1:2]


async def test_proof_lookups_are_rate_limited_per_user(cluster: Cluster) -> None:
    """R-Q-1: the 11th lookup within a minute is 429 with Retry-After; right or wrong
    proofs count alike; another user is not affected."""
    a, b, c = new_owner(), new_owner(), new_owner()
    await registered(cluster, a, b, c)
    b_headers = await cluster.login(b.alipay_user_id)

    async def b_vehicle_known() -> Any:
        return (await cluster.http.get("/api/v1/me", headers=b_headers)).json()["vehicles"]

    await eventually(b_vehicle_known)
    a_headers = await cluster.login(a.alipay_user_id)
    wrong = {"plate_type": "02", "plate_number": b.plate_number, "vin": "000000"}
    for _ in range(cluster.settings.lookup_rate_per_minute):
        r = await cluster.http.post(
            "/api/v1/violations/lookup/vehicle", json=wrong, headers=a_headers
        )
        assert r.status_code == 404, r.text
    right = wrong | {"vin": b.vin[-6:]}
    r = await cluster.http.post("/api/v1/violations/lookup/vehicle", json=right, headers=a_headers)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    c_headers = await cluster.login(c.alipay_user_id)
    r = await cluster.http.post("/api/v1/violations/lookup/vehicle", json=right, headers=c_headers)
    assert r.status_code == 200, r.text
    assert r.json()["vehicle"]["relation"] == "proven"


async def test_violations_anywhere_in_china_are_shown(cluster: Cluster) -> None:
    """R-Q-2: a Chongqing vehicle's violation committed in another province is listed."""
    owner = new_owner()
    await registered(cluster, owner)
    away = await record(cluster, owner, "away", place="北京市朝阳区建国路")
    headers = await cluster.login(owner.alipay_user_id)
    listed = await visible(cluster, headers, vehicle_id=owner.vehicle_id)
    assert [(v["violation_id"], v["place"]) for v in listed] == [
        (away["violation_id"], "北京市朝阳区建国路")
    ]


# -- R-Q-1: no existence oracle by timing (counted, never timed; bench/detail_timing.py
# prints the medians) ----------------------------------------------------------------------
class CountingConn:
    """A psycopg connection that records every statement it executes."""

    def __init__(self, conn: Conn, statements: list[str]) -> None:
        self._conn = conn
        self._statements = statements

    async def execute(self, query: Any, params: Any = None) -> Any:
        self._statements.append(str(query))
        return await self._conn.execute(query, params)


class CountingReaders:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.statements: list[str] = []
        self.connections = 0

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[PostgresReadModel]:
        self.connections += 1
        async with self.db.connection() as conn:
            yield PostgresReadModel(cast(Conn, CountingConn(conn, self.statements)))


class CountingEligibility:
    def __init__(self, inner: Eligibility) -> None:
        self.inner = inner
        self.asked = 0

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]:
        self.asked += 1
        return await self.inner.online_handling(caller, violation_ids)


def counting_redis(url: str, commands: list[tuple[str, int]]) -> aioredis.Redis:
    """A client that records each command it sends (one command = one round trip here:
    the detail uses no pipeline) with its number of arguments."""
    client = aioredis.Redis.from_url(url)
    send: Callable[..., Awaitable[Any]] = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        commands.append((str(args[0]), len(args) - 1))
        return await send(*args, **options)

    client.execute_command = execute_command  # type: ignore[method-assign]
    return client


async def test_r_q_1_foreign_and_missing_detail_cost_the_same_on_real_stores(
    cluster: Cluster,
) -> None:
    """R-Q-1: a stranger's detail of an existing violation (on a vehicle and a licence, or
    a vehicle only) and of a random id: the same one statement, the same one Redis
    command, no eligibility question; the owner pays the same, plus that question for the
    open camera violation (the decided ticket's hint comes from its row, R-Q-3)."""
    owner, stranger = new_owner(), new_owner()
    await registered(cluster, owner, stranger)
    camera = await record(cluster, owner, "rt-cam")
    ticket = await on_site_decided(cluster, owner, "rt-ticket", decided=TODAY)
    owner_headers = await cluster.login(owner.alipay_user_id)
    await visible(cluster, owner_headers, licence_id=owner.licence_id)
    listed = await visible(cluster, owner_headers, vehicle_id=owner.vehicle_id)
    assert {v["violation_id"] for v in listed} == {camera["violation_id"], ticket["violation_id"]}

    ctx = cluster.runtimes["query"].ctx
    assert ctx is not None, "the query runtime is started"
    commands: list[tuple[str, int]] = []
    redis = counting_redis(cluster.settings.redis_url, commands)
    base = build_views(ctx)
    readers = CountingReaders(ctx.db)
    eligibility = CountingEligibility(base.eligibility)
    views = replace(
        base,
        readers=readers,
        cache=ReadModelCache(redis, ttl_s=cluster.settings.query_cache_ttl_s),
        eligibility=eligibility,
    )
    strange = Caller(user_id=stranger.alipay_user_id, person_id=stranger.person_id)
    own = Caller(user_id=owner.alipay_user_id, person_id=owner.person_id)

    async def cost(caller: Caller, violation_id: str) -> tuple[Any, ...]:
        readers.statements.clear()
        readers.connections = 0
        commands.clear()
        eligibility.asked = 0
        try:
            await views.get_violation(caller, violation_id)
            outcome = "shown"
        except DomainError as err:
            outcome = err.code
        return (
            outcome,
            readers.connections,
            list(readers.statements),
            list(commands),
            eligibility.asked,
        )

    try:
        # twice each: a first read must not warm anything the second one skips
        runs = {
            label: [await cost(caller, vid) for _ in range(2)]
            for label, caller, vid in (
                ("foreign ticket", strange, ticket["violation_id"]),
                ("foreign camera", strange, camera["violation_id"]),
                ("missing", strange, str(uuid.uuid4())),
                ("owner", own, ticket["violation_id"]),
                ("owner camera", own, camera["violation_id"]),
            )
        }
    finally:
        await redis.aclose()

    missing = runs["missing"][0]
    outcome, connections, statements, redis_commands, asked = missing
    assert outcome == "NOT_FOUND"
    assert (connections, len(statements), asked) == (1, 1, 0)
    assert redis_commands == [("MGET", 2)], "one round trip for both subjects' proof grants"
    for label in ("foreign ticket", "foreign camera", "missing"):
        assert runs[label] == [missing, missing], label
    assert runs["owner"] == [("shown", 1, statements, redis_commands, 0)] * 2
    assert runs["owner camera"] == [("shown", 1, statements, redis_commands, 1)] * 2


# -- R-Q-3 / R-Q-5 / R-PAY-2 ------------------------------------------------------------------
async def test_detail_shows_amount_due_and_adjudications_online_hint(cluster: Cluster) -> None:
    """R-Q-3 and R-PAY-2: a decision 35 days old owes fine + 20 days x 3 %; the online
    handling hint is a decided violation's (pay it, not handle it again: cqcommon.decided)."""
    owner = new_owner()
    await registered(cluster, owner)
    # today now, not at import: a suite that runs across Beijing midnight (16:00 UTC)
    # would otherwise expect a day less of late fee than the server counts
    today = today_in_shanghai(SystemClock())
    ticket = await on_site_decided(cluster, owner, "late", decided=today - timedelta(days=35))
    headers = await cluster.login(owner.alipay_user_id)
    await visible(cluster, headers, vehicle_id=owner.vehicle_id)
    r = await cluster.http.get(f"/api/v1/violations/{ticket['violation_id']}", headers=headers)
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["status"] == "handled_unpaid"
    assert v["decision_no"] == ticket["decision_no"]
    due = today - timedelta(days=20)
    assert v["due_date"] == due.isoformat()
    # 20 days x 3 % of the 200-yuan fine (21 if midnight passed during the request)
    late_days = {(d - due).days for d in (today, today_in_shanghai(SystemClock()))}
    assert v["late_fee_fen"] in {600 * n for n in late_days}, (v, late_days)
    assert v["amount_due_fen"] == 20_000 + v["late_fee_fen"]
    if today == today_in_shanghai(SystemClock()):
        assert v["late_fee_fen"] == 12_000 and v["amount_due_fen"] == 32_000
    hint = v["online_handling"]
    assert hint["availability"] == "refused" and hint["allowed"] is False, hint
    assert hint["reason_code"] == "ALREADY_DECIDED" and hint["reason"]


async def test_fine_paid_shows_paid_on_the_next_read(cluster: Cluster) -> None:
    """R-Q-5: once FinePaid is applied the next read (through a warm cache) shows `paid`
    and the decision leaves the unpaid list; a refund brings it back."""
    owner = new_owner()
    await registered(cluster, owner)
    ticket = await on_site_decided(cluster, owner, "paid", decided=TODAY)
    headers = await cluster.login(owner.alipay_user_id)
    unpaid = {"vehicle_id": owner.vehicle_id, "status": "handled_unpaid"}
    await visible(cluster, headers, **unpaid)
    for _ in range(2):  # warm the cache
        r = await cluster.http.get("/api/v1/violations", params=unpaid, headers=headers)
        assert [v["violation_id"] for v in r.json()["violations"]] == [ticket["violation_id"]]

    payment = fine_paid(ticket)
    await publish(cluster, payment, ticket["decision_no"], producer="payment")
    r = await cluster.http.get("/api/v1/violations", params=unpaid, headers=headers)
    assert r.json()["violations"] == [], "a paid decision leaves the unpaid list at once"
    r = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=headers
    )
    assert [(v["status"], v["amount_due_fen"]) for v in r.json()["violations"]] == [("paid", 0)]
    me = await cluster.http.get("/api/v1/me", headers=headers)
    assert me.json()["vehicles"][0]["unpaid_count"] == 0

    refund = pay.PaymentRefunded(
        refund_id=str(uuid.uuid4()),
        payment_id=payment.payment_id,
        decision_no=ticket["decision_no"],
        violation_id=ticket["violation_id"],
        amount_fen=payment.amount_fen,
    )
    await publish(cluster, refund, ticket["decision_no"], producer="payment")
    r = await cluster.http.get("/api/v1/violations", params=unpaid, headers=headers)
    assert [v["violation_id"] for v in r.json()["violations"]] == [ticket["violation_id"]]


async def test_r_q_5_adjudication_closes_the_case_when_paid_and_a_duplicates_refund_keeps_it(
    cluster: Cluster,
) -> None:
    """R-Q-5 / R-PAY-5: adjudication records the case closed (`paid`) on FinePaid; refunding a
    duplicate payment leaves it paid; refunding the payment that paid opens it again."""
    owner = new_owner()
    await registered(cluster, owner)
    ticket = await on_site_decided(cluster, owner, "closed", decided=TODAY)

    async def adjudication_status() -> str:
        rows = await fetch_rows(
            cluster.settings.database_url,
            "SELECT status FROM adjudication.violations WHERE violation_id = %s",
            ticket["violation_id"],
        )
        return str(rows[0][0])

    async def sent(payload: Message) -> None:
        env = await cluster.publish(payload, aggregate_id=ticket["decision_no"], producer="payment")

        async def probe() -> bool:
            return await cluster.applied(env.event_id, schema="adjudication")

        await eventually(probe)

    assert await adjudication_status() == "handled_unpaid"
    paying = fine_paid(ticket)
    await sent(paying)
    assert await adjudication_status() == "paid"
    await sent(paying)  # the same fact again changes nothing
    assert await adjudication_status() == "paid"

    def refund_of(payment_id: str) -> Any:
        return pay.PaymentRefunded(
            refund_id=str(uuid.uuid4()),
            payment_id=payment_id,
            decision_no=ticket["decision_no"],
            violation_id=ticket["violation_id"],
            amount_fen=ticket["fine_fen"],
        )

    await sent(refund_of(str(uuid.uuid4())))  # a duplicate's refund
    assert await adjudication_status() == "paid"
    await sent(refund_of(paying.payment_id))
    assert await adjudication_status() == "handled_unpaid"


# -- events: twice, and out of order -----------------------------------------------------------
async def test_events_applied_twice_change_nothing(cluster: Cluster) -> None:
    """The same event delivered twice, and a second event with the same facts, leave the
    read model exactly as one did."""
    owner = new_owner()
    await registered(cluster, owner)
    camera = await record(cluster, owner, "twice")
    headers = await cluster.login(owner.alipay_user_id)
    await visible(cluster, headers, vehicle_id=owner.vehicle_id)
    vid = camera["violation_id"]
    handled = adj.ViolationHandled(
        violation_id=vid,
        handling_id=str(uuid.uuid4()),
        decision_no=decision_no(),
        decision_date=date_to_proto(TODAY),
        handler_person_id=owner.person_id,
        handler_licence_id=owner.licence_id,
        fine_fen=20_000,
        points=3,
        channel="online",
        vehicle_id=owner.vehicle_id,
    )
    disputed = adj.ViolationDisputed(violation_id=vid, staff_id="clerk01", reason="有异议")
    env_handled = await publish(cluster, handled, vid, producer="adjudication")
    env_disputed = await publish(cluster, disputed, vid, producer="adjudication")
    paid = fine_paid(camera | {"decision_no": handled.decision_no})
    env_paid = await publish(cluster, paid, handled.decision_no, producer="payment")
    once = await read_model_rows(cluster, vid)
    assert json.loads(once["violations"][0])["status"] == "paid"
    assert json.loads(once["violations"][0])["disputed"] is True

    # redeliveries (same event ids) and re-sends (new ids, same facts)
    for env, payload, key in (
        (env_handled, handled, vid),
        (env_disputed, disputed, vid),
        (env_paid, paid, handled.decision_no),
    ):
        await cluster.publish(payload, aggregate_id=key, envelope=env)
        await publish(cluster, payload, key, occurred_at=env.occurred_at.ToDatetime(tzinfo=UTC))
    # the redeliveries were consumed before the last re-send was applied (one partition)
    assert await read_model_rows(cluster, vid) == once
    r = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=headers
    )
    assert [v["status"] for v in r.json()["violations"]] == ["paid"]


async def test_events_before_their_registry_record_are_not_lost(cluster: Cluster) -> None:
    """Events about a vehicle and licence the read model has not seen yet (and a payment
    before its decision) are kept and show once the registry records arrive."""
    owner, follower = new_owner(), new_owner()
    await registered(cluster, follower)
    vid = str(uuid.uuid4())
    when = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    recorded = adj.ViolationRecorded(
        violation_id=vid,
        source_system="camera-net",
        source_record_id=f"early-{vid}",
        vehicle_id=owner.vehicle_id,
        plate_type=plate_type_to_proto("02"),
        plate_number=owner.plate_number,
        violation_code="1345",
        description_zh="超速",
        occurred_at=timestamp_to_proto(when),
        place="重庆市江北区",
        fine_fen=20_000,
        points=3,
        source=SOURCES["non_site"],
        procedure=PROCEDURES["simple"],
        status=STATUSES["unhandled"],
    )
    handled = adj.ViolationHandled(
        violation_id=vid,
        handling_id=str(uuid.uuid4()),
        decision_no=decision_no(),
        decision_date=date_to_proto(TODAY),
        handler_person_id=owner.person_id,
        handler_licence_id=owner.licence_id,
        fine_fen=20_000,
        points=3,
        channel="online",
        vehicle_id=owner.vehicle_id,
    )
    points = adj.PointsChanged(
        licence_id=owner.licence_id,
        person_id=owner.person_id,
        delta=3,
        points_after=3,
        channel="online",
        violation_id=vid,
    )
    follow = follow_started(follower, vehicle_id=owner.vehicle_id)
    # the payment arrives first of all, then the handling, then the violation itself
    paid = fine_paid({"violation_id": vid, "decision_no": handled.decision_no, "fine_fen": 20_000})
    await publish(cluster, paid, handled.decision_no, producer="payment")
    await publish(cluster, handled, vid, producer="adjudication")
    await publish(cluster, recorded, vid, producer="adjudication")
    await publish(cluster, points, owner.licence_id, producer="adjudication")
    await publish(cluster, follow, follow.follow_id, producer="follow")

    await registered(cluster, owner)
    headers = await cluster.login(owner.alipay_user_id)
    listed = await visible(cluster, headers, vehicle_id=owner.vehicle_id)
    assert [(v["violation_id"], v["status"], v["decision_no"]) for v in listed] == [
        (vid, "paid", handled.decision_no)
    ]
    on_licence = await visible(cluster, headers, licence_id=owner.licence_id)
    assert [v["violation_id"] for v in on_licence] == [vid]

    async def me_with_licence() -> Any:
        r = await cluster.http.get("/api/v1/me", headers=headers)
        return r.json() if r.json()["licence"] else None

    me = await eventually(me_with_licence)
    assert me["licence"]["points"]["points"] == 3, "PointsChanged wins over the import's 0"
    follower_headers = await cluster.login(follower.alipay_user_id)
    assert await visible(cluster, follower_headers, vehicle_id=owner.vehicle_id)


# -- R-X-1 -----------------------------------------------------------------------------------
async def test_me_shows_the_points_dashboard(cluster: Cluster) -> None:
    """R-X-1: points in the current cycle, the cycle's end, and whether one may drive."""
    owner = new_owner()  # licence first issued 2015-03-01
    await registered(cluster, owner)
    headers = await cluster.login(owner.alipay_user_id)

    async def me_with_licence() -> Any:
        r = await cluster.http.get("/api/v1/me", headers=headers)
        body = r.json()
        return body if body["licence"] and body["vehicles"] else None

    me = await eventually(me_with_licence)
    assert me["person"]["id_number"] == owner.id_number, "own data is not masked"
    assert me["person"]["phone"] == owner.phone
    assert me["vehicles"][0]["vin"] == owner.vin
    board = me["licence"]["points"]
    start = date(TODAY.year if date(TODAY.year, 3, 1) <= TODAY else TODAY.year - 1, 3, 1)
    assert board["cycle_start"] == start.isoformat()
    assert board["cycle_end"] == (date(start.year + 1, 3, 1) - timedelta(days=1)).isoformat()
    assert (board["points"], board["may_drive"], board["limit_reason"]) == (0, True, None)

    full = adj.PointsChanged(
        licence_id=owner.licence_id,
        person_id=owner.person_id,
        delta=12,
        points_after=12,
        channel="other_province",
    )
    await publish(cluster, full, owner.licence_id, producer="adjudication")
    board = (await cluster.http.get("/api/v1/me", headers=headers)).json()["licence"]["points"]
    assert (board["points"], board["may_drive"]) == (12, False)
    assert board["limit_reason"] == "POINTS_LIMIT_REACHED" and board["limit_reason_zh"]


# -- R-USR-2 -----------------------------------------------------------------------------------
async def test_counter_reads_are_unmasked_and_audited(cluster: Cluster) -> None:
    """R-USR-2: staff see the full record with violations; every read is audited under
    the person whose data it showed."""
    owner = new_owner()
    await registered(cluster, owner)
    ticket = await on_site_decided(cluster, owner, "counter", decided=TODAY)
    clerk = await cluster.staff("clerk01")

    async def staff_sees() -> Any:
        r = await cluster.http.get(
            "/internal/v1/vehicles",
            params={"plate_type": "02", "plate_number": owner.plate_number},
            headers=clerk,
        )
        return r if r.status_code == 200 and r.json()["violations"] else None

    r = await eventually(staff_sees)
    body = r.json()
    assert body["vehicle"]["vin"] == owner.vin
    assert body["vehicle"]["owner"]["id_number"] == owner.id_number
    assert body["vehicle"]["owner"]["phone"] == owner.phone
    assert [v["violation_id"] for v in body["violations"]] == [ticket["violation_id"]]
    r = await cluster.http.get(
        "/internal/v1/licences", params={"licence_no": owner.id_number}, headers=clerk
    )
    assert r.status_code == 200, r.text
    assert r.json()["licence"]["holder"]["name"] == owner.name
    assert r.json()["licence"]["file_no"] == owner.file_no

    supervisor = await cluster.staff("super01")
    audit = await cluster.http.get(
        "/internal/v1/audit", params={"subject": f"person:{owner.person_id}"}, headers=supervisor
    )
    assert audit.status_code == 200, audit.text
    paths = sorted(e["path"] for e in audit.json()["entries"] if e["staff_id"])
    assert "/internal/v1/licences" in paths and "/internal/v1/vehicles" in paths


async def test_dispute_and_undispute_latest_wins(cluster: Cluster) -> None:
    """R-ADJ-9: disputed then cleared shows not disputed; a stale dispute arriving late
    (an older event) does not dispute it again."""
    owner = new_owner()
    await registered(cluster, owner)
    camera = await record(cluster, owner, "dispute")
    headers = await cluster.login(owner.alipay_user_id)
    await visible(cluster, headers, vehicle_id=owner.vehicle_id)
    vid = camera["violation_id"]
    t0 = datetime.now(UTC)
    disputed = adj.ViolationDisputed(violation_id=vid, staff_id="clerk01", reason="有异议")
    await publish(cluster, disputed, vid, occurred_at=t0)
    detail = await cluster.http.get(f"/api/v1/violations/{vid}", headers=headers)
    assert detail.json()["disputed"] is True
    cleared = adj.ViolationUndisputed(violation_id=vid, staff_id="clerk01")
    await publish(cluster, cleared, vid, occurred_at=t0 + timedelta(minutes=5))
    stale = adj.ViolationDisputed(violation_id=vid, staff_id="clerk02", reason="旧的")
    await publish(cluster, stale, vid, occurred_at=t0 + timedelta(minutes=1))
    detail = await cluster.http.get(f"/api/v1/violations/{vid}", headers=headers)
    assert detail.json()["disputed"] is False
