"""The follow service's registry consumer on the real PostgreSQL: persons, vehicles and
licences applied as the inbox applies them (one transaction per event), with the registry's
real event messages. A redelivered event changes nothing; a changed record (a new phone,
an Alipay account, a new owner) replaces the copy, and what a follow request sees follows
it (R-FOL-2: whether the owner is on the platform)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as redis_async
from cqcommon.clock import FixedClock
from cqcommon.db import Database
from cqcommon.events import TOPIC_REGISTRY_PERSON, new_envelope
from cqcommon.identifiers import with_vin_check_digit
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.runner import ServiceContext
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqfollow.adapters.postgres_registry import PostgresRegistryReader
from cqfollow.entrypoints.consumers import registry_handlers
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
async def handlers(
    test_settings: Settings, follow_db: Database
) -> AsyncIterator[Mapping[str, Handler]]:
    ctx = ServiceContext(
        test_settings, follow_db, redis_async.from_url(test_settings.redis_url), FixedClock(NOW)
    )
    try:
        yield registry_handlers(ctx)
    finally:
        await ctx.redis.aclose()


async def apply(db: Database, handlers: Mapping[str, Handler], *messages: Message) -> None:
    """Each event in its own transaction, as the inbox applies it."""
    for message in messages:
        envelope = new_envelope(message, aggregate_id=str(uuid.uuid4()), producer="test")
        event = ReceivedEvent(envelope, message, TOPIC_REGISTRY_PERSON, 0, 0)
        async with db.transaction() as conn:
            await handlers[envelope.event_type](conn, event)


async def rows(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return await fetch_rows(settings.database_url, sql, *params)


async def test_registry_events_fill_the_copy_and_a_redelivery_changes_nothing(
    handlers: Mapping[str, Handler], follow_db: Database, test_settings: Settings
) -> None:
    owner, vehicle, licence = (str(uuid.uuid4()) for _ in range(3))
    plate = f"渝B{random.randrange(10**5):05d}"
    vin = with_vin_check_digit(f"LSVAU2180N2{random.randrange(10**6):06d}")
    events: list[Message] = [
        reg.PersonRegistered(person_id=owner, name="陈静", id_number="x", phone="13900000005"),
        reg.VehicleRegistered(
            vehicle_id=vehicle,
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=plate,
            vin=vin,
            owner_person_id=owner,
        ),
        reg.DriverRegistered(
            licence_id=licence,
            person_id=owner,
            licence_no="500107198512019624",
            file_no="500100000005",
        ),
    ]
    await apply(follow_db, handlers, *events)
    before = await rows(
        test_settings,
        "SELECT p.name, p.phone, p.alipay_user_id, v.plate_type, v.plate_number, v.vin,"
        " l.licence_no, l.file_no FROM follow.persons p"
        " JOIN follow.vehicles v ON v.owner_person_id = p.person_id"
        " JOIN follow.licences l ON l.person_id = p.person_id WHERE p.person_id = %s",
        owner,
    )
    assert before == [
        ("陈静", "13900000005", None, "02", plate, vin, "500107198512019624", "500100000005")
    ]
    await apply(follow_db, handlers, *events)  # redelivered
    again = await rows(
        test_settings,
        "SELECT count(*) FROM follow.vehicles WHERE plate_number = %s",
        plate,
    )
    assert again == [(1,)]
    async with follow_db.transaction() as conn:
        (seen,) = await PostgresRegistryReader(conn).vehicles_by_plate("02", plate)
    assert (seen.owner_phone, seen.owner_on_platform) == ("13900000005", False)
    # she joins the platform: requests now go to her in the app
    await apply(
        follow_db,
        handlers,
        reg.PersonRegistered(
            person_id=owner,
            name="陈静",
            phone="13900000005",
            alipay_user_id="2088000000000099",
        ),
    )
    async with follow_db.transaction() as conn:
        (seen,) = await PostgresRegistryReader(conn).vehicles_by_plate("02", plate)
    assert (seen.owner_user_id, seen.owner_on_platform) == ("2088000000000099", True)
