"""Domain <-> protobuf: the RecordViolation request, the Violation and Handling messages,
the events adjudication publishes, the online-handling answer and the R-X-2 alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from cqcommon.clock import Clock
from cqcommon.errors import INVALID_DECISION_DATE, DomainError
from cqcommon.events import new_envelope
from cqcommon.identifiers import mask_name
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

from cqadjudication.domain.alerts import PointsBuyingAlert
from cqadjudication.domain.callers import Caller
from cqadjudication.domain.eligibility import Assessment, Availability
from cqadjudication.domain.events import (
    DomainEvent,
    PointsChanged,
    ViolationDisputed,
    ViolationHandled,
    ViolationRecorded,
    ViolationUndisputed,
)
from cqadjudication.domain.handlings import Decision, Handling, VerificationStep
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


def violation_handled(e: ViolationHandled) -> events.ViolationHandled:
    d = e.decision
    return events.ViolationHandled(
        violation_id=e.violation.violation_id,
        handling_id=e.handling_id,
        decision_no=d.decision_no,
        decision_date=date_to_proto(d.decision_date),
        handler_person_id=e.handler_person_id,
        handler_licence_id=e.handler_licence_id,
        fine_fen=d.fine_fen,
        points=d.points,
        channel=e.channel,
        vehicle_id=e.violation.vehicle_id,
        due_date=date_to_proto(d.due_date),
    )


def points_changed(e: PointsChanged) -> events.PointsChanged:
    return events.PointsChanged(
        licence_id=e.licence_id,
        person_id=e.person_id,
        delta=e.delta,
        points_after=e.points_after,
        cycle_start=date_to_proto(e.cycle_start),
        cycle_end=date_to_proto(e.cycle_end),
        channel=e.channel,
        violation_id=e.violation_id or "",
    )


def envelope_of(event: DomainEvent) -> EventEnvelope:
    """The outbox envelope of a domain event a use case recorded (key: the violation, or
    the licence for points, so one aggregate's events stay in order on its partition)."""
    if isinstance(event, ViolationRecorded):
        v = event.violation
        return new_envelope(violation_recorded(v), aggregate_id=v.violation_id, producer=PRODUCER)
    if isinstance(event, ViolationHandled):
        return new_envelope(
            violation_handled(event),
            aggregate_id=event.violation.violation_id,
            producer=PRODUCER,
        )
    if isinstance(event, PointsChanged):
        return new_envelope(points_changed(event), aggregate_id=event.licence_id, producer=PRODUCER)
    if isinstance(event, ViolationDisputed):
        return new_envelope(
            events.ViolationDisputed(
                violation_id=event.violation_id, staff_id=event.staff_id, reason=event.reason
            ),
            aggregate_id=event.violation_id,
            producer=PRODUCER,
        )
    if isinstance(event, ViolationUndisputed):
        return new_envelope(
            events.ViolationUndisputed(violation_id=event.violation_id, staff_id=event.staff_id),
            aggregate_id=event.violation_id,
            producer=PRODUCER,
        )
    raise TypeError(f"no wire format for {type(event).__name__}")


def given_relations_from_request(
    request: pb.GetHandlingEligibilityRequest,
) -> dict[str, str] | None:
    """The caller's relations the query service sent along, or ``None`` when it sent none
    (adjudication then asks it). ``relations_given`` marks the map complete, even an empty
    one; a non-empty map without it (a sender predating the flag) is taken as complete too.
    """
    if request.relations_given or request.vehicle_relations:
        return dict(request.vehicle_relations)
    return None


def caller_from_proto(caller: common.Caller) -> Caller:
    return Caller(
        user_id=caller.user_id,
        person_id=caller.person_id,
        staff_id=caller.staff_id,
        staff_role=caller.staff_role,
    )


def decision_to_proto(d: Decision) -> pb.Decision:
    return pb.Decision(
        decision_no=d.decision_no,
        violation_id=d.violation_id,
        decision_date=date_to_proto(d.decision_date),
        due_date=date_to_proto(d.due_date),
        fine_fen=d.fine_fen,
        points=d.points,
    )


def _step_to_proto(h: Handling, s: VerificationStep, now: datetime) -> pb.VerificationStep:
    # R-Q-4: the handler sees their own name; another person's (the owner's) is masked.
    name = s.person_name if s.person_id == h.handler_person_id else mask_name(s.person_name)
    step = pb.VerificationStep(
        step=s.step,
        certify_id=s.certify_id,
        url=s.url,
        status=s.shown_status(now),
        person_name=name,
    )
    if s.expires_at is not None:
        step.expires_at.CopyFrom(timestamp_to_proto(s.expires_at))
    return step


def handling_to_proto(h: Handling, *, now: datetime) -> pb.Handling:
    """The handling as its handler sees it at ``now`` (a step may have expired since)."""
    message = pb.Handling(
        handling_id=h.handling_id,
        violation_id=h.violation_id,
        handler_person_id=h.handler_person_id,
        state=h.state,
        steps=[_step_to_proto(h, s, now) for s in h.steps],
        route=h.route,
        handler_licence_id=h.handler_licence_id,
        created_at=timestamp_to_proto(h.created_at),
    )
    if h.decision is not None:
        message.decision.CopyFrom(decision_to_proto(h.decision))
    return message


def alert_to_proto(a: PointsBuyingAlert) -> pb.PointsBuyingAlert:
    return pb.PointsBuyingAlert(
        alert_id=a.alert_id,
        kind=a.kind,
        licence_id=a.licence_id,
        vehicle_id=a.vehicle_id,
        cycle_start=date_to_proto(a.cycle_start),
        count=a.count,
        violation_id=a.violation_id,
        handler_person_id=a.handler_person_id,
        raised_at=timestamp_to_proto(a.raised_at),
    )


_AVAILABILITY: dict[Availability, common.OnlineHandling.Availability.ValueType] = {
    "allowed": common.OnlineHandling.AVAILABILITY_ALLOWED,
    "refused": common.OnlineHandling.AVAILABILITY_REFUSED,
    "unknown": common.OnlineHandling.AVAILABILITY_UNKNOWN,
}


def online_handling_to_proto(a: Assessment) -> common.OnlineHandling:
    """R-Q-3's hint: the first reason in the single-reason fields, every one in ``reasons``."""
    first = a.reason
    return common.OnlineHandling(
        availability=_AVAILABILITY[a.availability],
        route=a.route,
        reason_code=first.code if first else "",
        reason_zh=first.zh if first else "",
        reason_en=first.en if first else "",
        reasons=[common.Reason(code=r.code, zh=r.zh, en=r.en) for r in a.reasons],
    )
