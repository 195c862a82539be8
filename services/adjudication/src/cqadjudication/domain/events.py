"""Domain events adjudication's use cases record in a unit of work. They are plain
dataclasses; the unit of work's adapter encodes them (protobuf envelope) into the outbox
in the same transaction as the change, so the domain and the use cases never see the wire
format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cqadjudication.domain.handlings import Decision
from cqadjudication.domain.points import Channel
from cqadjudication.domain.violations import Violation


@dataclass(frozen=True)
class ViolationRecorded:
    """A violation became a legal record (published as ``ViolationRecorded``)."""

    violation: Violation


@dataclass(frozen=True)
class ViolationHandled:
    """A penalty decision was issued for a violation (online, at a counter, or recorded
    from an enforcement system); R-ADJ-7."""

    violation: Violation
    decision: Decision
    handling_id: str
    handler_person_id: str
    handler_licence_id: str
    #: "online" or "counter"
    channel: str


@dataclass(frozen=True)
class PointsChanged:
    """A licence's points changed (R-ADJ-5/6: the channel tells online from the others)."""

    licence_id: str
    person_id: str
    delta: int
    points_after: int
    cycle_start: date
    cycle_end: date
    channel: Channel
    violation_id: str | None


@dataclass(frozen=True)
class ViolationDisputed:
    """Staff marked a violation disputed (R-ADJ-9): no online handling, no payment."""

    violation_id: str
    staff_id: str
    reason: str


@dataclass(frozen=True)
class ViolationUndisputed:
    violation_id: str
    staff_id: str


#: Every event a use case may record (the encoder handles each one).
DomainEvent = (
    ViolationRecorded | ViolationHandled | PointsChanged | ViolationDisputed | ViolationUndisputed
)
