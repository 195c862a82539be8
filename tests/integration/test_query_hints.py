"""R-Q-3 across services: the online-handling hint on every item of a list, asked of
adjudication once per page and kept per caller beside the shared page in the real Redis;
and R-Q-1's GetRelations as adjudication calls it — real PostgreSQL, Redis and Kafka,
every service in this process (tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from cqcommon.errors import DomainError
from cqcommon.grpc_client import make_channel
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqdev.testing import (
    Cluster,
    Owner,
    eventually,
    new_owner,
    violation_body,
    violation_code_record,
)
from cqquery.adapters.cache import ReadModelCache
from cqquery.adapters.eligibility import AdjudicationEligibility
from cqquery.bootstrap import build_views
from cqquery.domain.model import Caller
from cqquery.domain.online_handling import Reason
from cqquery.domain.results import ListPage, OnlineHandlingHint
from cqquery.entrypoints.mappers import hint_to_proto, list_page_to_proto
from cqquery.service_layer.views import QueryViews
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import events_pb2 as fol
from cqtraffic.query.v1 import query_pb2 as query
from cqtraffic.query.v1 import query_pb2_grpc as query_grpc
from google.protobuf.message import Message

pytestmark = pytest.mark.integration


# -- helpers ----------------------------------------------------------------------------
async def registered(cluster: Cluster, *owners: Owner) -> None:
    await cluster.import_records(
        [*(r for o in owners for r in o.records()), violation_code_record()]
    )


async def record(cluster: Cluster, owner: Owner, **overrides: Any) -> dict[str, Any]:
    body = violation_body(owner.plate_number, f"hint-{uuid.uuid4().hex[:12]}", **overrides)
    r = await cluster.record_violation(body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def listed(
    cluster: Cluster, headers: dict[str, str], count: int, **params: str
) -> list[dict[str, Any]]:
    """The caller's list once the read model has ``count`` violations in it."""

    async def probe() -> list[dict[str, Any]] | None:
        r = await cluster.http.get("/api/v1/violations", params=params, headers=headers)
        if r.status_code != 200 or len(r.json()["violations"]) < count:
            return None
        return list(r.json()["violations"])

    return await eventually(probe)


async def publish(cluster: Cluster, payload: Message, aggregate_id: str) -> None:
    env = await cluster.publish(payload, aggregate_id=aggregate_id)

    async def probe() -> bool:
        return await cluster.applied(env.event_id)

    await eventually(probe)


def follow(follower: Owner, vehicle_id: str) -> fol.FollowStarted:
    return fol.FollowStarted(
        follow_id=str(uuid.uuid4()),
        follower_person_id=follower.person_id,
        follower_user_id=follower.alipay_user_id,
        target=fol.FOLLOW_TARGET_VEHICLE,
        vehicle_id=vehicle_id,
        consent="owner_app",
        started_at=timestamp_to_proto(datetime.now(UTC)),
    )


def caller(owner: Owner) -> Caller:
    return Caller(user_id=owner.alipay_user_id, person_id=owner.person_id)


class RelationEligibility:
    """Answers by the relation the question carries (owner allowed, follower refused with
    two reasons), counting questions: which caller got which answer is then visible."""

    def __init__(self) -> None:
        self.asked: list[tuple[Caller, list[str]]] = []

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]:
        self.asked.append((caller, violation_ids))
        relations = set(dict(caller.vehicle_relations).values())
        if relations == {"own"}:
            answer = OnlineHandlingHint("allowed", "handler")
        else:
            first = Reason("NOT_OWNER", "非本人车辆。", "Not your vehicle.")
            second = Reason("POINTS_OVER_LIMIT", "记分超限。", "Over the limit.")
            answer = OnlineHandlingHint(
                "refused", "counter", first.code, first.zh, first.en, (first, second)
            )
        return dict.fromkeys(violation_ids, answer)


def counting_redis(url: str, commands: list[str]) -> aioredis.Redis:
    """A client that records the name of each command it sends (one round trip each: the
    list read uses no pipeline)."""
    client = aioredis.Redis.from_url(url)
    send: Callable[..., Awaitable[Any]] = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await send(*args, **options)

    client.execute_command = execute_command  # type: ignore[method-assign]
    return client


def views_on(cluster: Cluster, redis: aioredis.Redis, eligibility: Any) -> QueryViews:
    ctx = cluster.runtimes["query"].ctx
    assert ctx is not None, "the query runtime is started"
    return replace(
        build_views(ctx),
        cache=ReadModelCache(redis, ttl_s=cluster.settings.query_cache_ttl_s),
        eligibility=eligibility,
    )


def hints_of(page: ListPage) -> dict[str, tuple[int, tuple[str, ...]]]:
    """violation id -> (availability, reason codes) as the gateway receives them."""
    return {
        v.violation_id: (
            v.online_handling.availability,
            tuple(r.code for r in v.online_handling.reasons),
        )
        for v in list_page_to_proto(page).violations
        if v.HasField("online_handling")
    }


async def hinted_page(views: QueryViews, owner: Owner, count: int) -> ListPage:
    """The owner's vehicle page through ``views`` once ``count`` of its items carry a hint."""

    async def probe() -> ListPage | None:
        try:
            page = await views.list_violations(
                caller(owner), "vehicle", owner.vehicle_id, status=None
            )
        except DomainError:  # NOT_FOUND until the read model has the vehicle
            return None
        return page if len(hints_of(page)) >= count else None

    return await eventually(probe)


ALLOWED = common.OnlineHandling.AVAILABILITY_ALLOWED
REFUSED = common.OnlineHandling.AVAILABILITY_REFUSED
UNKNOWN = common.OnlineHandling.AVAILABILITY_UNKNOWN


# -- through the gateway ---------------------------------------------------------------------
async def test_r_q_3_every_list_item_carries_the_same_hint_as_its_detail(cluster: Cluster) -> None:
    """R-Q-3: each item of GET /api/v1/violations carries `online_handling`, and it is the
    answer the violation's own detail gives (adjudication's, through one batched question)."""
    owner = new_owner()
    await registered(cluster, owner)
    for fine in (10_000, 20_000, 30_000):
        await record(cluster, owner, fine_fen=fine)
    headers = await cluster.login(owner.alipay_user_id)
    items = await listed(cluster, headers, 3, vehicle_id=owner.vehicle_id)
    for item in items:
        hint = item["online_handling"]
        assert hint is not None and hint["availability"] in {"allowed", "refused", "unknown"}, item
        r = await cluster.http.get(f"/api/v1/violations/{item['violation_id']}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["online_handling"] == hint
    # read again (now from the cache): the same hints
    again = await listed(cluster, headers, 3, vehicle_id=owner.vehicle_id)
    assert [i["online_handling"] for i in again] == [i["online_handling"] for i in items]


# -- the query service's own use cases on the real Redis ------------------------------------------
async def test_r_q_3_hints_are_one_question_per_page_kept_per_caller_and_versioned(
    cluster: Cluster,
) -> None:
    """One question per page with the caller's relation; the next read takes the page and
    the hints in ONE Redis round trip and asks nothing; the follower sharing the page gets
    their own answers; the owner's points changing, or the follower following something
    else, makes that caller — and only that caller — ask again."""
    owner, follower, other = new_owner(), new_owner(), new_owner()
    await registered(cluster, owner, follower, other)
    recorded = [await record(cluster, owner) for _ in range(2)]
    await listed(cluster, await cluster.login(owner.alipay_user_id), 2, vehicle_id=owner.vehicle_id)
    await publish(cluster, follow(follower, owner.vehicle_id), owner.vehicle_id)

    commands: list[str] = []
    redis = counting_redis(cluster.settings.redis_url, commands)
    eligibility = RelationEligibility()
    views = views_on(cluster, redis, eligibility)

    async def read(who: Owner) -> tuple[ListPage, int, list[str]]:
        commands.clear()
        before = len(eligibility.asked)
        page = await views.list_violations(caller(who), "vehicle", owner.vehicle_id, status=None)
        return page, len(eligibility.asked) - before, list(commands)

    try:
        mine, asked, _ = await read(owner)
        assert asked == 1
        ((asker, ids),) = eligibility.asked[-1:]
        assert sorted(ids) == sorted(v["violation_id"] for v in recorded)
        assert dict(asker.vehicle_relations) == {owner.vehicle_id: "own"}
        assert set(hints_of(mine).values()) == {(ALLOWED, ())}

        again, asked, sent = await read(owner)
        assert (asked, sent) == (0, ["EVALSHA"]), "their page with hints in one round trip"
        assert again == mine

        theirs, asked, _ = await read(follower)
        assert asked == 1 and hints_of(theirs).keys() == hints_of(mine).keys()
        assert set(hints_of(theirs).values()) == {(REFUSED, ("NOT_OWNER", "POINTS_OVER_LIMIT"))}
        assert (await read(follower))[1] == 0

        # the owner's licence changed (PointsChanged moves their person's version)
        await publish(
            cluster,
            adj.PointsChanged(
                licence_id=owner.licence_id,
                person_id=owner.person_id,
                delta=3,
                points_after=3,
                cycle_start=date_to_proto(datetime.now(UTC).date().replace(day=1)),
                cycle_end=date_to_proto(datetime.now(UTC).date().replace(day=28)),
                channel="counter",
            ),
            owner.licence_id,
        )
        assert (await read(follower))[1] == 0, "not the follower's licence"
        assert (await read(owner))[1] == 1
        assert (await read(owner))[1] == 0

        # the follower follows another vehicle (their user's version moves on)
        await publish(cluster, follow(follower, other.vehicle_id), other.vehicle_id)
        assert (await read(owner))[1] == 0, "not the owner's follows"
        assert (await read(follower))[1] == 1
    finally:
        await redis.aclose()


async def test_r_q_3_adjudication_down_lists_unknown_and_keeps_nothing(cluster: Cluster) -> None:
    """Adjudication unreachable: the list still answers, every item `unknown` with the
    reason, and no hint is kept (the next read asks again)."""
    owner = new_owner()
    await registered(cluster, owner)
    await record(cluster, owner)
    redis = aioredis.Redis.from_url(cluster.settings.redis_url)
    dead = grpc.aio.insecure_channel("127.0.0.1:9")  # discard port: nothing answers
    try:
        views = views_on(cluster, redis, AdjudicationEligibility(dead, timeout_s=0.3))

        # (no read before this one: none could have kept a hint of adjudication's)
        page = await hinted_page(views, owner, 1)
        assert set(hints_of(page).values()) == {(UNKNOWN, ("ELIGIBILITY_UNAVAILABLE",))}
        kept = [k async for k in redis.scan_iter(match=f"q:own:vehicle:{owner.vehicle_id}:*")]
        assert kept == []
    finally:
        await dead.close(None)
        await redis.aclose()


class CountingEligibility:
    """Adjudication's real answers, with the ids each question named."""

    def __init__(self, inner: AdjudicationEligibility) -> None:
        self.inner = inner
        self.asked: list[list[str]] = []

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]:
        self.asked.append(list(violation_ids))
        return await self.inner.online_handling(caller, violation_ids)


async def test_r_q_3_a_listed_decided_violation_carries_adjudications_answer_unasked(
    cluster: Cluster,
) -> None:
    """A handled violation on a list gets its hint from its record (cqcommon.decided):
    adjudication is asked only about the open one beside it, and the hint is the one
    adjudication itself gives when asked; through the gateway, list and detail agree."""
    owner = new_owner()
    await registered(cluster, owner)
    opened = await record(cluster, owner)
    today = datetime.now(UTC).date()
    ticket = await record(
        cluster,
        owner,
        source="on_site",
        occurred_at=f"{(today - timedelta(days=1)).isoformat()}T08:30:00+08:00",
        licence_no=owner.id_number,
        decision_no=f"500101{uuid.uuid4().int % 10**10:010d}",
        decision_date=today.isoformat(),
    )
    redis = aioredis.Redis.from_url(cluster.settings.redis_url)
    channel = make_channel(cluster.settings.adjudication_service_addr)
    try:
        adjudication = AdjudicationEligibility(channel, timeout_s=5.0)
        counting = CountingEligibility(adjudication)
        views = views_on(cluster, redis, counting)
        page = await hinted_page(views, owner, 2)
        assert [opened["violation_id"]] in counting.asked
        assert all(ticket["violation_id"] not in ids for ids in counting.asked)
        asked_directly = await adjudication.online_handling(
            caller(owner).asking_about({owner.vehicle_id: "own"}), [ticket["violation_id"]]
        )
        (shown,) = [
            v
            for v in list_page_to_proto(page).violations
            if v.violation_id == ticket["violation_id"]
        ]
        assert shown.online_handling == hint_to_proto(asked_directly[ticket["violation_id"]])
        assert shown.online_handling.availability == REFUSED
    finally:
        await channel.close(None)
        await redis.aclose()

    headers = await cluster.login(owner.alipay_user_id)
    for item in await listed(cluster, headers, 2, vehicle_id=owner.vehicle_id):
        r = await cluster.http.get(f"/api/v1/violations/{item['violation_id']}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["online_handling"] == item["online_handling"]


# -- R-Q-1 for adjudication: GetRelations over gRPC ----------------------------------------------
async def test_r_q_1_get_relations_names_own_followed_and_proven_vehicles(cluster: Cluster) -> None:
    owner, follower, prover = new_owner(), new_owner(), new_owner()
    await registered(cluster, owner, follower, prover)
    await record(cluster, owner)
    await listed(cluster, await cluster.login(owner.alipay_user_id), 1, vehicle_id=owner.vehicle_id)
    await publish(cluster, follow(follower, owner.vehicle_id), owner.vehicle_id)

    channel = make_channel(cluster.settings.query_service_addr)
    stub = query_grpc.QueryServiceStub(channel)

    async def relations(who: Owner) -> dict[str, str]:
        request = query.GetRelationsRequest(
            # as adjudication forwards the gateway's caller: the person id resolved here
            caller=common.Caller(user_id=who.alipay_user_id),
            vehicle_ids=[owner.vehicle_id, follower.vehicle_id, str(uuid.uuid4()), "x"],
        )
        return dict((await stub.GetRelations(request, timeout=10)).relations)

    try:
        assert await relations(owner) == {owner.vehicle_id: "own"}
        assert await relations(follower) == {
            owner.vehicle_id: "followed",
            follower.vehicle_id: "own",
        }
        assert await relations(prover) == {}
        prover_headers = await cluster.login(prover.alipay_user_id)
        r = await cluster.http.post(
            "/api/v1/violations/lookup/vehicle",
            json={"plate_type": "02", "plate_number": owner.plate_number, "vin": owner.vin[-6:]},
            headers=prover_headers,
        )
        assert r.status_code == 200, r.text
        assert await relations(prover) == {owner.vehicle_id: "proven"}
    finally:
        await channel.close(None)
