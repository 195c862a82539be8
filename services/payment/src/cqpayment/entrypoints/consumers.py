"""Payment's event consumers: decode each event and hand it to the learning use cases on
the decision-copy adapter, inside the inbox transaction (so a redelivered event is applied
once, and applying it twice would change nothing anyway).

- ``payment.violations`` (adjudication's violation topic): ``ViolationRecorded`` (facts,
  and a decision when it carries one), ``ViolationHandled`` (a decision issued),
  ``ViolationDisputed`` / ``ViolationUndisputed`` (R-PAY-1, R-ADJ-9).
- ``payment.registry``: persons' names and phones, vehicles' owners and plates, licences'
  holders (what a decision shows of its party; the phone the overdue SMS goes to, R-JOB-6).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cqcommon.clock import Clock
from cqcommon.db import Conn
from cqcommon.events import (
    TOPIC_REGISTRY_DRIVER,
    TOPIC_REGISTRY_PERSON,
    TOPIC_REGISTRY_VEHICLE,
    TOPIC_VIOLATION,
)
from cqcommon.inbox import BatchHandler, Handler, ReceivedEvent
from cqcommon.protomap import date_from_proto
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

from cqpayment.adapters.postgres_copy import PostgresDecisionCopy
from cqpayment.entrypoints.mappers import facts_from_recorded
from cqpayment.ports import DecisionCopy
from cqpayment.service_layer.learning import (
    Recorded,
    learn_disputed,
    learn_handled,
    learn_recorded_many,
)

CopyFactory = Callable[[Conn], DecisionCopy]
Apply = Callable[[DecisionCopy, Message, datetime], Awaitable[None]]


@dataclass(frozen=True)
class ApplyMany:
    """Applies a run of consecutive events of one type at once (``cqcommon.inbox``'s
    ``BatchHandler``)."""

    many: Callable[[DecisionCopy, Sequence[Message], datetime], Awaitable[None]]


async def on_recorded_many(copy: DecisionCopy, es: Sequence[Message], now: datetime) -> None:
    """A run of ``ViolationRecorded`` (the busiest event of a day) at once."""
    recorded = []
    for e in es:
        assert isinstance(e, adj.ViolationRecorded)
        recorded.append(
            Recorded(
                facts_from_recorded(e),
                decision_no=e.decision_no or None,
                decision_date=date_from_proto(e.decision_date),
            )
        )
    await learn_recorded_many(copy, recorded, now=now)


async def on_handled(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, adj.ViolationHandled)
    decision_date = date_from_proto(e.decision_date)
    if not e.decision_no or decision_date is None:
        raise ValueError(f"ViolationHandled of {e.violation_id} carries no decision")
    await learn_handled(
        copy,
        violation_id=e.violation_id,
        decision_no=e.decision_no,
        decision_date=decision_date,
        fine_fen=e.fine_fen,
        points=e.points,
        handler_person_id=e.handler_person_id,
        handler_licence_id=e.handler_licence_id,
        vehicle_id=e.vehicle_id,
        now=now,
    )


async def on_disputed(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, adj.ViolationDisputed)
    await learn_disputed(copy, violation_id=e.violation_id, disputed=True, now=now)


async def on_undisputed(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, adj.ViolationUndisputed)
    await learn_disputed(copy, violation_id=e.violation_id, disputed=False, now=now)


async def on_person(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.PersonRegistered)
    await copy.upsert_person(person_id=e.person_id, name=e.name, phone=e.phone or None)


async def on_vehicle(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.VehicleRegistered)
    await copy.upsert_vehicle(
        vehicle_id=e.vehicle_id, owner_person_id=e.owner_person_id, plate_number=e.plate_number
    )


async def on_driver(copy: DecisionCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.DriverRegistered)
    await copy.upsert_licence(licence_id=e.licence_id, person_id=e.person_id)


def _handlers(
    table: Mapping[type[Message], Apply | ApplyMany], clock: Clock, copy_factory: CopyFactory
) -> dict[str, Handler]:
    def on(apply: Apply) -> Handler:
        async def handle(conn: Conn, event: ReceivedEvent) -> None:
            await apply(copy_factory(conn), event.payload, clock.now())

        return handle

    def on_many(apply_many: ApplyMany) -> Handler:
        async def handle_many(conn: Conn, events: Sequence[ReceivedEvent]) -> None:
            await apply_many.many(copy_factory(conn), [e.payload for e in events], clock.now())

        return BatchHandler(handle_many)

    return {
        str(kind.DESCRIPTOR.full_name): on_many(apply)
        if isinstance(apply, ApplyMany)
        else on(apply)
        for kind, apply in table.items()
    }


VIOLATION_EVENTS: Mapping[type[Message], Apply | ApplyMany] = {
    adj.ViolationRecorded: ApplyMany(on_recorded_many),
    adj.ViolationHandled: on_handled,
    adj.ViolationDisputed: on_disputed,
    adj.ViolationUndisputed: on_undisputed,
}
REGISTRY_EVENTS: Mapping[type[Message], Apply] = {
    reg.PersonRegistered: on_person,
    reg.VehicleRegistered: on_vehicle,
    reg.DriverRegistered: on_driver,
}


def violation_handlers(
    ctx: ServiceContext, copy_factory: CopyFactory = PostgresDecisionCopy
) -> Mapping[str, Handler]:
    return _handlers(VIOLATION_EVENTS, ctx.clock, copy_factory)


def registry_handlers(
    ctx: ServiceContext, copy_factory: CopyFactory = PostgresDecisionCopy
) -> Mapping[str, Handler]:
    return _handlers(REGISTRY_EVENTS, ctx.clock, copy_factory)


VIOLATION_CONSUMER = ConsumerSpec(
    group_id="payment.violations", topics=[TOPIC_VIOLATION], handlers=violation_handlers
)
REGISTRY_CONSUMER = ConsumerSpec(
    group_id="payment.registry",
    topics=[TOPIC_REGISTRY_PERSON, TOPIC_REGISTRY_VEHICLE, TOPIC_REGISTRY_DRIVER],
    handlers=registry_handlers,
)
