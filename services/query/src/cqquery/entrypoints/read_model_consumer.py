"""Builds the read model from registry, adjudication, payment and follow events.

Each handler decodes its event into the projector's facts (``adapters.projector``:
idempotent writes that do not need the referred row to exist yet) and invalidates the
cache of every subject it touched, with a bracket opened inside the transaction and
closed after the commit (``adapters.cache`` explains why). Events that change how a
person may handle violations online (their licence's points, what they handled, the
vehicles they own) also move that person's version, and follows move the follower's:
cached online-handling hints are keyed by both (R-Q-3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from cqcommon.db import Conn
from cqcommon.events import (
    TOPIC_FOLLOW,
    TOPIC_PAYMENT,
    TOPIC_POINTS,
    TOPIC_REGISTRY_DRIVER,
    TOPIC_REGISTRY_PERSON,
    TOPIC_REGISTRY_VEHICLE,
    TOPIC_VIOLATION,
)
from cqcommon.inbox import BatchHandler, Handler, ReceivedEvent
from cqcommon.protomap import (
    PROCEDURE_NAMES,
    SOURCE_NAMES,
    STATUS_NAMES,
    date_from_proto,
    plate_type_from_proto,
    timestamp_from_proto,
)
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.follow.v1 import events_pb2 as fol
from cqtraffic.payment.v1 import events_pb2 as pay
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

from cqquery.adapters.cache import ReadModelCache, Subject
from cqquery.adapters.projector import (
    Follow,
    Handling,
    LicenceFacts,
    PersonFacts,
    ReadModelProjector,
    RecordedViolation,
    VehicleFacts,
)

M = TypeVar("M", bound=Message)
Projection = Callable[[ReadModelProjector, ReceivedEvent], Awaitable[list[Subject]]]
BatchProjection = Callable[
    [ReadModelProjector, Sequence[ReceivedEvent]], Awaitable[list[list[Subject]]]
]

_TARGETS = {fol.FOLLOW_TARGET_VEHICLE: "vehicle", fol.FOLLOW_TARGET_LICENCE: "licence"}


def _occurred(event: ReceivedEvent) -> datetime:
    at = timestamp_from_proto(event.envelope.occurred_at)
    if at is None:
        raise ValueError(f"event {event.envelope.event_id} has no occurred_at")
    return at


def _payload(event: ReceivedEvent, kind: type[M]) -> M:
    if not isinstance(event.payload, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(event.payload).__name__}")
    return event.payload


def _person(person_id: str) -> Subject:
    """A person's version: their cached online-handling hints (an empty id is skipped)."""
    return ("person", person_id)


def _user(user_id: str) -> Subject:
    """A user's version: their cached hints that depend on what they follow."""
    return ("user", user_id)


# -- registry ---------------------------------------------------------------------------
async def on_person(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, reg.PersonRegistered)
    return await p.person(
        PersonFacts(e.person_id, e.name, e.id_number, e.phone, e.alipay_user_id or None)
    )


async def on_vehicle(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, reg.VehicleRegistered)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"vehicle {e.vehicle_id} has no plate type")
    touched = await p.vehicle(
        VehicleFacts(
            e.vehicle_id, plate_type.value, e.plate_number, e.vin, e.owner_person_id, e.vehicle_kind
        )
    )
    return [*touched, _person(e.owner_person_id)]


async def on_driver(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, reg.DriverRegistered)
    touched = await p.licence(
        LicenceFacts(
            licence_id=e.licence_id,
            person_id=e.person_id,
            licence_no=e.licence_no,
            file_no=e.file_no,
            licence_class=e.licence_class,
            first_issued_on=date_from_proto(e.first_issued_on),
            points=e.points,
            status=e.status or "valid",
        )
    )
    return [*touched, _person(e.person_id)]


# -- adjudication -----------------------------------------------------------------------
def _recorded(event: ReceivedEvent) -> RecordedViolation:
    e = _payload(event, adj.ViolationRecorded)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"violation {e.violation_id} has no plate type")
    return RecordedViolation(
        violation_id=e.violation_id,
        vehicle_id=e.vehicle_id,
        plate_type=plate_type.value,
        plate_number=e.plate_number,
        licence_id=e.licence_id or None,
        violation_code=e.violation_code,
        description_zh=e.description_zh,
        occurred_at=timestamp_from_proto(e.occurred_at),
        place=e.place,
        fine_fen=e.fine_fen,
        points=e.points,
        source=SOURCE_NAMES[e.source],
        procedure=PROCEDURE_NAMES[e.procedure],
        status=STATUS_NAMES[e.status],
        decision_no=e.decision_no or None,
        decision_date=date_from_proto(e.decision_date),
    )


async def on_violations_recorded(
    p: ReadModelProjector, events: Sequence[ReceivedEvent]
) -> list[list[Subject]]:
    """The busiest event of a day (every camera record): a run of them is written with
    a statement per table (``BatchHandler``)."""
    return await p.violations_recorded([_recorded(event) for event in events])


async def on_violation_handled(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, adj.ViolationHandled)
    decision_date = date_from_proto(e.decision_date)
    if not e.decision_no or decision_date is None:
        raise ValueError(f"handling of {e.violation_id} carries no decision")
    touched = await p.violation_handled(
        Handling(
            violation_id=e.violation_id,
            handling_id=e.handling_id,
            decision_no=e.decision_no,
            decision_date=decision_date,
            handler_person_id=e.handler_person_id or None,
            handler_licence_id=e.handler_licence_id or None,
            fine_fen=e.fine_fen,
            points=e.points,
            channel=e.channel,
        )
    )
    # the handler's points and R-X-2 usage changed
    return [*touched, _person(e.handler_person_id)]


async def on_disputed(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, adj.ViolationDisputed)
    return await p.dispute(e.violation_id, disputed=True, as_of=_occurred(event))


async def on_undisputed(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, adj.ViolationUndisputed)
    return await p.dispute(e.violation_id, disputed=False, as_of=_occurred(event))


async def on_points_changed(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, adj.PointsChanged)
    touched = await p.points_changed(
        e.licence_id,
        points=e.points_after,
        cycle_start=date_from_proto(e.cycle_start),
        cycle_end=date_from_proto(e.cycle_end),
        channel=e.channel,
        as_of=_occurred(event),
    )
    return [*touched, _person(e.person_id)]


# -- payment ----------------------------------------------------------------------------
async def on_fine_paid(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, pay.FinePaid)
    return await p.fine_paid(
        payment_id=e.payment_id,
        violation_id=e.violation_id,
        decision_no=e.decision_no,
        amount_fen=e.amount_fen,
        paid_at=timestamp_from_proto(e.paid_at) or _occurred(event),
        channel=e.channel,
    )


async def on_refunded(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, pay.PaymentRefunded)
    return await p.payment_refunded(
        payment_id=e.payment_id,
        refund_id=e.refund_id,
        violation_id=e.violation_id,
        decision_no=e.decision_no,
        refunded_at=timestamp_from_proto(e.refunded_at) or _occurred(event),
    )


# -- follow -----------------------------------------------------------------------------
def _follow(e: fol.FollowStarted | fol.FollowEnded) -> Follow:
    target = _TARGETS.get(e.target)
    if target is None:
        raise ValueError(f"follow {e.follow_id} has no target")
    return Follow(
        follow_id=e.follow_id,
        follower_person_id=e.follower_person_id or None,
        follower_user_id=e.follower_user_id or None,
        target=target,
        vehicle_id=e.vehicle_id or None if target == "vehicle" else None,
        licence_id=e.licence_id or None if target == "licence" else None,
    )


async def on_follow_started(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, fol.FollowStarted)
    touched = await p.follow_started(
        _follow(e),
        consent=e.consent,
        started_at=timestamp_from_proto(e.started_at) or _occurred(event),
        expires_at=timestamp_from_proto(e.expires_at),
    )
    return [*touched, _user(e.follower_user_id)]


async def on_follow_ended(p: ReadModelProjector, event: ReceivedEvent) -> list[Subject]:
    e = _payload(event, fol.FollowEnded)
    touched = await p.follow_ended(
        _follow(e),
        reason=e.reason,
        ended_at=timestamp_from_proto(e.ended_at) or _occurred(event),
    )
    return [*touched, _user(e.follower_user_id)]


PROJECTIONS: dict[type[Message], Projection] = {
    reg.PersonRegistered: on_person,
    reg.VehicleRegistered: on_vehicle,
    reg.DriverRegistered: on_driver,
    adj.ViolationHandled: on_violation_handled,
    adj.ViolationDisputed: on_disputed,
    adj.ViolationUndisputed: on_undisputed,
    adj.PointsChanged: on_points_changed,
    pay.FinePaid: on_fine_paid,
    pay.PaymentRefunded: on_refunded,
    fol.FollowStarted: on_follow_started,
    fol.FollowEnded: on_follow_ended,
}


#: events whose runs are applied at once: each projection returns the subjects touched by
#: each event of the run, in order
BATCH_PROJECTIONS: dict[type[Message], BatchProjection] = {
    adj.ViolationRecorded: on_violations_recorded,
}


def _bracket(cache: ReadModelCache, event: ReceivedEvent, subjects: list[Subject]) -> None:
    """Invalidate ``subjects`` around ``event``'s commit (``adapters.cache``)."""
    if not subjects:
        return

    async def begin_change() -> None:
        # in the transaction, before its commit; a Redis failure fails (and retries) the
        # event. A batch's begins share one round trip (ReadModelCache), as its ends do
        await cache.begin_change(subjects)

    async def end_change() -> None:
        await cache.end_change(subjects)

    event.before_commit(begin_change)
    event.after_commit(end_change)


def _batch_handler(projection: BatchProjection, cache: ReadModelCache) -> BatchHandler:
    async def handle_many(conn: Conn, events: Sequence[ReceivedEvent]) -> None:
        touched = await projection(ReadModelProjector(conn), events)
        for event, subjects in zip(events, touched, strict=True):
            _bracket(cache, event, subjects)

    return BatchHandler(handle_many)


def _handler(projection: Projection, cache: ReadModelCache) -> Handler:
    async def handle(conn: Conn, event: ReceivedEvent) -> None:
        _bracket(cache, event, await projection(ReadModelProjector(conn), event))

    return handle


def handlers(ctx: ServiceContext) -> Mapping[str, Handler]:
    cache = ReadModelCache(ctx.redis, ttl_s=ctx.settings.query_cache_ttl_s)
    one: dict[str, Handler] = {
        message.DESCRIPTOR.full_name: _handler(projection, cache)
        for message, projection in PROJECTIONS.items()
    }
    many: dict[str, Handler] = {
        message.DESCRIPTOR.full_name: _batch_handler(projection, cache)
        for message, projection in BATCH_PROJECTIONS.items()
    }
    return {**one, **many}


READ_MODEL_CONSUMER = ConsumerSpec(
    group_id="query.read-model",
    topics=[
        TOPIC_REGISTRY_PERSON,
        TOPIC_REGISTRY_VEHICLE,
        TOPIC_REGISTRY_DRIVER,
        TOPIC_VIOLATION,
        TOPIC_POINTS,
        TOPIC_PAYMENT,
        TOPIC_FOLLOW,
    ],
    handlers=handlers,
)
