"""Domain <-> protobuf: the RecordViolation request, the Violation message, the events
adjudication publishes and the online-handling answer."""

from __future__ import annotations

from datetime import date
from typing import Any

from cqcommon.clock import Clock
from cqcommon.errors import INVALID_DECISION_DATE, DomainError
from cqcommon.events import new_envelope
from cqcommon.protomap import (
    PROCEDURE_NAMES,
    PROCEDURES,
    SOURCE_NAMES,
    SOURCES,
    STATUSES,
    date_to_proto,
    plate_type_from_proto,
    plate_type_to_proto,
    timestamp_from_proto,
    timestamp_to_proto,
)
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import events_pb2 as events
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

from cqadjudication.domain.eligibility import Availability, Eligibility
from cqadjudication.domain.events import DomainEvent, ViolationRecorded
from cqadjudication.domain.violations import (
    RecordingWindow,
    Violation,
    ViolationReport,
    validate_report,
)

PRODUCER = "adjudication"


def decision_date_from_proto(value: common.Date) -> date | None:
    """None for the unset date (0/0/0: proto3's "absent"); any other date that is not a
    calendar date (0/5/1, 2026/13/1, 2026/2/30) is an error, never a silent "absent"."""
    if value.year == 0 and value.month == 0 and value.day == 0:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        raise DomainError(INVALID_DECISION_DATE, details={"field": "decision_date"}) from None


def report_from_request(
    request: pb.RecordViolationRequest, *, clock: Clock, window: RecordingWindow
) -> ViolationReport:
    """Decode and validate a RecordViolation request (``validate_report``'s rules)."""
    plate_type = plate_type_from_proto(request.plate_type)
    return validate_report(
        source_system=request.source_system,
        source_record_id=request.source_record_id,
        plate_type=plate_type.value if plate_type else "",
        plate_number=request.plate_number,
        licence_no=request.licence_no or None,
        violation_code=request.violation_code,
        occurred_at=timestamp_from_proto(request.occurred_at),
        place=request.place,
        fine_fen=request.fine_fen,
        source=SOURCE_NAMES.get(request.source, ""),
        procedure=PROCEDURE_NAMES.get(request.procedure, ""),
        decision_no=request.decision_no or None,
        decision_date=decision_date_from_proto(request.decision_date),
        clock=clock,
        window=window,
    )


def _violation_fields(v: Violation) -> dict[str, Any]:
    """The fields the Violation message and the ViolationRecorded event share."""
    return {
        "violation_id": v.violation_id,
        "source_system": v.source_system,
        "source_record_id": v.source_record_id,
        "vehicle_id": v.vehicle_id,
        "plate_type": plate_type_to_proto(v.plate_type),
        "plate_number": v.plate_number,
        "licence_id": v.licence_id or "",
        "violation_code": v.violation_code,
        "description_zh": v.description_zh,
        "occurred_at": timestamp_to_proto(v.occurred_at),
        "place": v.place,
        "fine_fen": v.fine_fen,
        "points": v.points,
        "source": SOURCES[v.source],
        "procedure": PROCEDURES[v.procedure],
        "status": STATUSES[v.status],
        "decision_no": v.decision_no or "",
        "decision_date": date_to_proto(v.decision_date),
    }


def violation_to_proto(v: Violation) -> pb.Violation:
    return pb.Violation(**_violation_fields(v), disputed=v.disputed)


def violation_recorded(v: Violation) -> events.ViolationRecorded:
    return events.ViolationRecorded(**_violation_fields(v))


def envelope_of(event: DomainEvent) -> EventEnvelope:
    """The outbox envelope of a domain event a use case recorded."""
    if isinstance(event, ViolationRecorded):
        v = event.violation
        return new_envelope(violation_recorded(v), aggregate_id=v.violation_id, producer=PRODUCER)
    raise TypeError(f"no wire format for {type(event).__name__}")


_AVAILABILITY: dict[Availability, common.OnlineHandling.Availability.ValueType] = {
    "allowed": common.OnlineHandling.AVAILABILITY_ALLOWED,
    "refused": common.OnlineHandling.AVAILABILITY_REFUSED,
    "unknown": common.OnlineHandling.AVAILABILITY_UNKNOWN,
}


def online_handling_to_proto(e: Eligibility) -> common.OnlineHandling:
    return common.OnlineHandling(
        availability=_AVAILABILITY[e.availability],
        route=e.route,
        reason_code=e.reason.code,
        reason_zh=e.reason.zh,
        reason_en=e.reason.en,
    )
