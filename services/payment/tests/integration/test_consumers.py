"""Payment's consumers on the real PostgreSQL (R-PAY-1): the handlers of the
``payment.violations`` and ``payment.registry`` groups applied as the inbox applies them
(one transaction per event), with adjudication's and the registry's real event messages.
A redelivered event changes nothing; events of different topics in any order end in the
same rows; a decided violation becomes payable against the right party."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as redis_async
from cqcommon.clock import FixedClock
from cqcommon.db import Database
from cqcommon.events import TOPIC_VIOLATION, new_envelope
from cqcommon.grpc_client import call
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.protomap import date_to_proto, plate_type_to_proto, timestamp_to_proto
from cqcommon.runner import ServiceContext
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqpayment.entrypoints.consumers import registry_handlers, violation_handlers
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.payment.v1 import payment_pb2 as pb
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

if TYPE_CHECKING:
    from cqtraffic.payment.v1.payment_pb2_grpc import PaymentServiceAsyncStub

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
async def handlers(
    test_settings: Settings, payment_db: Database
) -> AsyncIterator[Mapping[str, Handler]]:
    ctx = ServiceContext(
        test_settings, payment_db, redis_async.from_url(test_settings.redis_url), FixedClock(NOW)
    )
    try:
        yield {**violation_handlers(ctx), **registry_handlers(ctx)}
    finally:
        await ctx.redis.aclose()


async def apply(db: Database, handlers: Mapping[str, Handler], *messages: Message) -> None:
    """Each event in its own transaction, as the inbox applies it."""
    for message in messages:
        envelope = new_envelope(message, aggregate_id=str(uuid.uuid4()), producer="test")
        event = ReceivedEvent(envelope, message, TOPIC_VIOLATION, 0, 0)
        async with db.transaction() as conn:
            await handlers[envelope.event_type](conn, event)


def recorded(
    violation_id: str, vehicle_id: str, plate: str, *, decision_no: str = "", licence_id: str = ""
) -> adj.ViolationRecorded:
    return adj.ViolationRecorded(
        violation_id=violation_id,
        source_system="camera-net",
        source_record_id=f"cam-{uuid.uuid4().hex}",
        vehicle_id=vehicle_id,
        plate_type=plate_type_to_proto("02"),
        plate_number=plate,
        licence_id=licence_id,
        violation_code="1345",
        description_zh="机动车违反禁令标志指示的",
        occurred_at=timestamp_to_proto(NOW - timedelta(days=2)),
        place="重庆市渝中区解放碑",
        fine_fen=20_000,
        points=3,
        source=common.VIOLATION_SOURCE_ON_SITE if decision_no else common.VIOLATION_SOURCE_NON_SITE,
        procedure=common.PROCEDURE_SIMPLE,
        status=common.VIOLATION_STATUS_HANDLED_UNPAID
        if decision_no
        else common.VIOLATION_STATUS_UNHANDLED,
        decision_no=decision_no,
        decision_date=date_to_proto((NOW - timedelta(days=1)).date() if decision_no else None),
    )


async def decision_row(settings: Settings, violation_id: str) -> tuple[Any, ...] | None:
    rows = await fetch_rows(
        settings.database_url,
        "SELECT decision_no, party_person_id::text, plate_number, place, disputed, learned_from,"
        " fine_fen FROM payment.decisions WHERE violation_id = %s",
        violation_id,
    )
    return rows[0] if rows else None


def _decision_no() -> str:
    return f"500103{random.randrange(10**10):010d}"


async def test_r_pay_1_handled_decision_is_learned_once_with_the_recorded_facts(
    handlers: Mapping[str, Handler],
    payment_db: Database,
    test_settings: Settings,
    payment: PaymentServiceAsyncStub,
) -> None:
    owner, handler_person = str(uuid.uuid4()), str(uuid.uuid4())
    vehicle_id, violation_id, licence_id = (str(uuid.uuid4()) for _ in range(3))
    plate = f"渝C{random.randrange(10_000, 100_000)}"
    decision_no = _decision_no()
    events: list[Message] = [
        reg.PersonRegistered(person_id=owner, name="李娜", id_number="x"),
        reg.PersonRegistered(person_id=handler_person, name="王强", id_number="y"),
        reg.VehicleRegistered(
            vehicle_id=vehicle_id,
            plate_type=plate_type_to_proto("02"),
            plate_number=plate,
            owner_person_id=owner,
        ),
        reg.DriverRegistered(licence_id=licence_id, person_id=handler_person),
        recorded(violation_id, vehicle_id, plate),
        adj.ViolationDisputed(violation_id=violation_id, staff_id="clerk01", reason="异议"),
        adj.ViolationHandled(
            violation_id=violation_id,
            handling_id=str(uuid.uuid4()),
            decision_no=decision_no,
            decision_date=date_to_proto(NOW.date()),
            handler_person_id=handler_person,
            handler_licence_id=licence_id,
            fine_fen=20_000,
            points=3,
            channel="counter",
            vehicle_id=vehicle_id,
        ),
    ]
    await apply(payment_db, handlers, *events[:5])
    assert await decision_row(test_settings, violation_id) is None  # recorded undecided
    await apply(payment_db, handlers, *events[5:])
    learned = await decision_row(test_settings, violation_id)
    assert learned == (
        decision_no,
        handler_person,
        plate,
        "重庆市渝中区解放碑",
        True,
        "handled",
        20_000,
    )
    await apply(payment_db, handlers, *events)  # every event redelivered: nothing changes
    assert await decision_row(test_settings, violation_id) == learned
    await apply(payment_db, handlers, adj.ViolationUndisputed(violation_id=violation_id))
    seen = await call(
        payment.GetDecision,
        pb.GetDecisionRequest(
            caller=common.Caller(user_id="2088x", person_id=handler_person), decision_no=decision_no
        ),
        timeout_s=10,
    )
    assert (seen.own, seen.party_name, seen.plate_number, seen.disputed) == (
        True,
        "王强",
        plate,
        False,
    )


async def test_r_pay_1_recorded_decision_before_its_registry_records_gets_its_party_later(
    handlers: Mapping[str, Handler], payment_db: Database, test_settings: Settings
) -> None:
    """On-site decisions name the licence's holder, camera ones the vehicle's owner; a
    registry record arriving after the decision (another topic) fills the party in."""
    holder, owner = str(uuid.uuid4()), str(uuid.uuid4())
    vehicle_id, licence_id = str(uuid.uuid4()), str(uuid.uuid4())
    on_site, camera = str(uuid.uuid4()), str(uuid.uuid4())
    plate = f"渝D{random.randrange(10_000, 100_000)}"
    await apply(
        payment_db,
        handlers,
        recorded(on_site, vehicle_id, plate, decision_no=_decision_no(), licence_id=licence_id),
        recorded(camera, vehicle_id, plate, decision_no=_decision_no()),
    )
    assert (await decision_row(test_settings, on_site) or ())[1] is None
    assert (await decision_row(test_settings, camera) or ())[1] is None
    await apply(
        payment_db,
        handlers,
        reg.DriverRegistered(licence_id=licence_id, person_id=holder),
        reg.VehicleRegistered(vehicle_id=vehicle_id, plate_number=plate, owner_person_id=owner),
    )
    assert (await decision_row(test_settings, on_site) or ())[1:2] == (holder,)
    assert (await decision_row(test_settings, camera) or ())[1:2] == (owner,)
    assert (await decision_row(test_settings, camera) or ())[5] == "recorded"


async def test_r_pay_1_a_decision_learned_while_its_licence_arrives_gets_its_party(
    payment_db: Database,
) -> None:
    """The decision (violations group) and the licence (registry group) arrive in two
    concurrent transactions. Whichever commits second must see the other: the decision
    may not stay without a party (it would never become payable)."""
    from cqpayment.adapters.postgres_copy import PostgresDecisionCopy
    from cqpayment.domain.decisions import ViolationFacts
    from cqpayment.service_layer.learning import learn_recorded

    person_id, licence_id = str(uuid.uuid4()), str(uuid.uuid4())
    vehicle_id, violation_id = str(uuid.uuid4()), str(uuid.uuid4())
    decision_no = _decision_no()
    now = datetime.now(UTC)
    async with payment_db.transaction() as setup:
        await PostgresDecisionCopy(setup).upsert_person(person_id=person_id, name="赵敏")
    facts = ViolationFacts(
        violation_id=violation_id,
        vehicle_id=vehicle_id,
        licence_id=licence_id,
        plate_number="渝A7R2K9",
        violation_code="1345",
        description_zh="机动车违反禁令标志指示的",
        occurred_at=now - timedelta(days=1),
        place="重庆市渝北区",
        fine_fen=20000,
        points=3,
    )
    licence_learned = asyncio.Event()

    async def learn_licence() -> None:
        async with payment_db.transaction() as conn:
            await PostgresDecisionCopy(conn).upsert_licence(
                licence_id=licence_id, person_id=person_id
            )
        licence_learned.set()

    async with payment_db.transaction() as conn:
        await learn_recorded(
            PostgresDecisionCopy(conn),
            facts,
            decision_no=decision_no,
            decision_date=now.date(),
            now=now,
        )
        # the licence's transaction runs now, while the decision is not committed yet
        licence = asyncio.create_task(learn_licence())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(licence_learned.wait(), timeout=0.5)
    await licence
    async with payment_db.connection() as conn:
        cur = await conn.execute(
            "SELECT party_person_id::text FROM decisions WHERE decision_no = %s", (decision_no,)
        )
        row = await cur.fetchone()
    assert row is not None and row[0] == person_id
