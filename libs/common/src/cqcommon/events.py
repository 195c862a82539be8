"""Event types, their topics, and the envelope they travel in.

Every event is a protobuf message in proto/; ``EVENT_TOPICS`` is the one table that
says which topic carries it (topics ``cqtraffic.<ctx>.<aggregate>.v1``, key = aggregate
id). ``new_envelope`` wraps a payload, ``unpack`` gets it back as its own type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cqtraffic.adjudication.v1 import events_pb2 as adjudication_events
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.follow.v1 import events_pb2 as follow_events
from cqtraffic.payment.v1 import events_pb2 as payment_events
from cqtraffic.registry.v1 import registry_pb2 as registry_events
from google.protobuf.message import Message

TOPIC_REGISTRY_PERSON = "cqtraffic.registry.person.v1"
TOPIC_REGISTRY_VEHICLE = "cqtraffic.registry.vehicle.v1"
TOPIC_REGISTRY_DRIVER = "cqtraffic.registry.driver.v1"
TOPIC_REGISTRY_VIOLATION_CODE = "cqtraffic.registry.violation_code.v1"
TOPIC_VIOLATION = "cqtraffic.adjudication.violation.v1"
TOPIC_POINTS = "cqtraffic.adjudication.points.v1"
TOPIC_PAYMENT = "cqtraffic.payment.payment.v1"
TOPIC_FOLLOW = "cqtraffic.follow.follow.v1"


@dataclass(frozen=True)
class EventType:
    message: type[Message]
    topic: str
    aggregate_type: str

    @property
    def name(self) -> str:
        return str(self.message.DESCRIPTOR.full_name)


_EVENT_TYPES: list[EventType] = [
    EventType(registry_events.PersonRegistered, TOPIC_REGISTRY_PERSON, "person"),
    EventType(registry_events.VehicleRegistered, TOPIC_REGISTRY_VEHICLE, "vehicle"),
    EventType(registry_events.DriverRegistered, TOPIC_REGISTRY_DRIVER, "licence"),
    EventType(
        registry_events.ViolationCodeRegistered, TOPIC_REGISTRY_VIOLATION_CODE, "violation_code"
    ),
    EventType(adjudication_events.ViolationRecorded, TOPIC_VIOLATION, "violation"),
    EventType(adjudication_events.ViolationHandled, TOPIC_VIOLATION, "violation"),
    EventType(adjudication_events.ViolationDisputed, TOPIC_VIOLATION, "violation"),
    EventType(adjudication_events.ViolationUndisputed, TOPIC_VIOLATION, "violation"),
    EventType(adjudication_events.PointsChanged, TOPIC_POINTS, "licence"),
    EventType(payment_events.FinePaid, TOPIC_PAYMENT, "decision"),
    EventType(payment_events.PaymentRefunded, TOPIC_PAYMENT, "decision"),
    EventType(follow_events.FollowStarted, TOPIC_FOLLOW, "follow"),
    EventType(follow_events.FollowEnded, TOPIC_FOLLOW, "follow"),
]

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _EVENT_TYPES}
ALL_TOPICS: tuple[str, ...] = tuple(sorted({t.topic for t in _EVENT_TYPES}))


class UnknownEventTypeError(ValueError):
    """An envelope names a payload type this build does not know."""


def event_type_of(message: Message | type[Message]) -> EventType:
    name = str(message.DESCRIPTOR.full_name)
    try:
        return EVENT_TYPES[name]
    except KeyError as exc:
        raise UnknownEventTypeError(name) from exc


def new_envelope(
    payload: Message,
    *,
    aggregate_id: str,
    producer: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> EventEnvelope:
    """Wrap ``payload`` for publishing; ``aggregate_id`` becomes the Kafka key."""
    etype = event_type_of(payload)
    env = EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=etype.name,
        aggregate_type=etype.aggregate_type,
        aggregate_id=aggregate_id,
        producer=producer,
    )
    env.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    env.payload.Pack(payload)
    return env


def unpack(envelope: EventEnvelope) -> Message:
    """The envelope's payload as its own message type."""
    etype = EVENT_TYPES.get(envelope.event_type)
    if etype is None:
        raise UnknownEventTypeError(envelope.event_type)
    message = etype.message()
    if not envelope.payload.Unpack(message):
        raise ValueError(f"payload of {envelope.event_id} is not a {envelope.event_type}")
    return message


def topic_name(base: str, prefix: str) -> str:
    """The broker-side topic name (a prefix isolates test runs on a shared broker)."""
    return f"{prefix}{base}"
