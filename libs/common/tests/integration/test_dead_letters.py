"""Dead-letter replay against real PostgreSQL and a real Tansu broker: a poison event set
aside by a consumer is applied once its cause is fixed, exactly once however often the
replay runs, and one that still fails goes back to the dead-letter topic without making
the replay loop."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from cqcommon.db import Database
from cqcommon.dead_letters import list_dead_letters, replay_dead_letters
from cqcommon.events import TOPIC_REGISTRY_PERSON, new_envelope, topic_name
from cqcommon.inbox import ConsumerConfig, EventConsumer, ReceivedEvent
from cqcommon.settings import Settings
from cqdev.testing import consume_until, consumer_on, produce_raw
from cqtraffic.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration


class Handler:
    """Applies PersonRegistered; refuses the names in ``broken`` (the bug being fixed)."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken

    async def __call__(self, conn: object, event: ReceivedEvent) -> None:
        payload = event.payload
        assert isinstance(payload, reg.PersonRegistered)
        if payload.name in self.broken:
            raise RuntimeError(f"cannot apply {payload.name}")
        await conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO applied VALUES (%s, %s)", (event.envelope.event_id, payload.person_id)
        )


def consumer_for(db: Database, settings: Settings, group: str, handler: Handler) -> EventConsumer:
    return consumer_on(
        db,
        settings,
        group,
        {reg.PersonRegistered.DESCRIPTOR.full_name: handler},
        topics=[TOPIC_REGISTRY_PERSON],
        config=ConsumerConfig(max_attempts=1, backoff_base_s=0.01),
    )


def person(name: str) -> reg.PersonRegistered:
    return reg.PersonRegistered(
        person_id=str(uuid.uuid4()), name=name, id_number="500101199001011237", phone="13900000000"
    )


def produce(settings: Settings, values: list[bytes]) -> None:
    produce_raw(settings, TOPIC_REGISTRY_PERSON, values, key=b"k")


async def applied_ids(db: Database) -> list[str]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT event_id::text FROM applied ORDER BY event_id")
        return [str(r[0]) for r in await cur.fetchall()]


async def test_replay_applies_fixed_dead_letters_once_and_requeues_the_still_broken(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    group = f"test.replay.{uuid.uuid4().hex[:6]}"
    fixed = new_envelope(person("修好"), aggregate_id="p1", producer="test")
    still = new_envelope(person("仍坏"), aggregate_id="p2", producer="test")
    good = new_envelope(person("正常"), aggregate_id="p3", producer="test")
    handler = Handler(broken={"修好", "仍坏"})
    live = consumer_for(db, settings, group, handler)
    await asyncio.to_thread(
        produce,
        settings,
        [fixed.SerializeToString(), still.SerializeToString(), good.SerializeToString()],
    )
    await consume_until(
        live, lambda: live.applied_total >= 1 and live.dead_lettered_total >= 2, timeout_s=30
    )
    assert await applied_ids(db) == [good.event_id]

    listed = await list_dead_letters(settings, group)
    assert sorted(d.event_id or "" for d in listed) == sorted([fixed.event_id, still.event_id])
    assert all("cannot apply" in d.error for d in listed)
    source_topic = topic_name(TOPIC_REGISTRY_PERSON, settings.kafka_topic_prefix)
    assert all(d.source.startswith(f"{source_topic}/") for d in listed)

    handler.broken = {"仍坏"}  # the fix for one of them is deployed
    replayer = consumer_for(db, settings, group, handler)
    report = await replay_dead_letters(replayer, settings)
    assert report.read == 2 and not report.stopped_early
    assert sorted(await applied_ids(db)) == sorted([good.event_id, fixed.event_id])
    assert replayer.dead_lettered_total == 1  # the still-broken one went back

    # the next run reads only what the first one put back, and applies nothing twice
    second = await replay_dead_letters(consumer_for(db, settings, group, handler), settings)
    assert [d.event_id for d in second.replayed] == [still.event_id]
    handler.broken = set()
    third = await replay_dead_letters(consumer_for(db, settings, group, handler), settings)
    assert [d.event_id for d in third.replayed] == [still.event_id]
    assert sorted(await applied_ids(db)) == sorted([good.event_id, fixed.event_id, still.event_id])
    assert (
        await replay_dead_letters(consumer_for(db, settings, group, handler), settings)
    ).read == 0


async def test_listing_a_group_that_never_dead_lettered_is_empty(
    plumbing: tuple[Database, Settings],
) -> None:
    _db, settings = plumbing
    assert await list_dead_letters(settings, f"test.none.{uuid.uuid4().hex[:6]}") == []
