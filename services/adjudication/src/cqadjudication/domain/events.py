"""Domain events adjudication's use cases record in a unit of work. They are plain
dataclasses; the unit of work's adapter encodes them (protobuf envelope) into the outbox
in the same transaction as the change, so the domain and the use cases never see the wire
format."""

from __future__ import annotations

from dataclasses import dataclass

from cqadjudication.domain.violations import Violation


@dataclass(frozen=True)
class ViolationRecorded:
    """A violation became a legal record (published as ``ViolationRecorded``)."""

    violation: Violation


#: Every event a use case may record (the encoder handles each one).
DomainEvent = ViolationRecorded
