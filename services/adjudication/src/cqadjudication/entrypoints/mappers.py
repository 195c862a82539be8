"""Domain <-> protobuf: the Violation message and the events adjudication publishes."""

from __future__ import annotations

from typing import Any

from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    STATUSES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import events_pb2 as events

from cqadjudication.domain.violations import Violation


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
