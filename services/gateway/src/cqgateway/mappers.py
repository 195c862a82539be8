"""The one place where HTTP JSON and protobuf meet (decode requests, encode responses).

Conventions of the JSON side: snake_case fields as in the proto, enums as lower-case
names (``"non_site"``, ``"handled_unpaid"``), plate types as their national codes
(``"02"``), money as integer fen, timestamps ISO 8601 in Asia/Shanghai with the
offset, dates ``YYYY-MM-DD``, and unset proto strings/dates as ``null``.
Identifier formats are checked here with ``cqcommon.identifiers``, which raises
``DomainError`` with the identifier's own 400 code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

from cqcommon import identifiers as ids
from cqcommon import protomap
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as query
from google.protobuf.timestamp_pb2 import Timestamp

from cqgateway.schemas import (
    OnlineHandlingOut,
    PlateTypeCode,
    ProcedureName,
    RecordViolationBody,
    ViolationListOut,
    ViolationOut,
    ViolationRecord,
    ViolationSourceName,
    ViolationStatusName,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

Availability = Literal["allowed", "refused", "unknown"]
_AVAILABILITY: dict[int, Availability] = {
    common.OnlineHandling.AVAILABILITY_ALLOWED: "allowed",
    common.OnlineHandling.AVAILABILITY_REFUSED: "refused",
}
# proto enum number → JSON name; the names are the Literal types' members by construction.
_SOURCE_OUT = {int(v): cast("ViolationSourceName", k) for k, v in protomap.SOURCES.items()}
_PROCEDURE_OUT = {int(v): cast("ProcedureName", k) for k, v in protomap.PROCEDURES.items()}
_STATUS_OUT = {int(v): cast("ViolationStatusName", k) for k, v in protomap.STATUSES.items()}


# -- small conversions ------------------------------------------------------------------
def _opt(value: str) -> str | None:
    return value or None


def _timestamp(value: Timestamp) -> datetime | None:
    ts = protomap.timestamp_from_proto(value)
    return ts.astimezone(SHANGHAI) if ts is not None else None


def _date(value: common.Date) -> date | None:
    return protomap.date_from_proto(value)


def _plate_type(value: int) -> PlateTypeCode | None:
    plate = protomap.plate_type_from_proto(value)
    return plate.value if plate is not None else None


def _source(value: int) -> ViolationSourceName | None:
    return _SOURCE_OUT.get(value)


def _procedure(value: int) -> ProcedureName | None:
    return _PROCEDURE_OUT.get(value)


def _status(value: int) -> ViolationStatusName | None:
    return _STATUS_OUT.get(value)


def status_to_proto(value: ViolationStatusName | None) -> common.ViolationStatus.ValueType:
    if value is None:
        return common.VIOLATION_STATUS_UNSPECIFIED
    return protomap.STATUSES[value]


# -- POST /internal/v1/violations -------------------------------------------------------
def record_violation_request(
    body: RecordViolationBody, caller: common.Caller
) -> adj.RecordViolationRequest:
    """Validate identifier formats and build the adjudication request."""
    plate_type, plate_number = ids.parse_plate(body.plate_type, body.plate_number)
    request = adj.RecordViolationRequest(
        caller=caller,
        source_system=body.source_system,
        source_record_id=body.source_record_id,
        plate_type=protomap.plate_type_to_proto(plate_type),
        plate_number=plate_number,
        licence_no=ids.parse_id_number(body.licence_no) if body.licence_no else "",
        violation_code=ids.parse_violation_code(body.violation_code),
        occurred_at=protomap.timestamp_to_proto(body.occurred_at),
        place=body.place,
        fine_fen=body.fine_fen,
        source=protomap.SOURCES[body.source],
        procedure=protomap.PROCEDURES[body.procedure],
        decision_no=ids.parse_decision_no(body.decision_no) if body.decision_no else "",
        decision_date=protomap.date_to_proto(body.decision_date),
    )
    return request


def violation_record_out(v: adj.Violation) -> ViolationRecord:
    return ViolationRecord(
        violation_id=v.violation_id,
        source_system=v.source_system,
        source_record_id=v.source_record_id,
        vehicle_id=_opt(v.vehicle_id),
        plate_type=_plate_type(v.plate_type),
        plate_number=v.plate_number,
        licence_id=_opt(v.licence_id),
        violation_code=v.violation_code,
        description_zh=v.description_zh,
        occurred_at=_timestamp(v.occurred_at),
        place=v.place,
        fine_fen=v.fine_fen,
        points=v.points,
        source=_source(v.source),
        procedure=_procedure(v.procedure),
        status=_status(v.status),
        decision_no=_opt(v.decision_no),
        decision_date=_date(v.decision_date),
        disputed=v.disputed,
    )


# -- GET /api/v1/violations -------------------------------------------------------------
def list_violations_request(
    caller: common.Caller,
    *,
    vehicle_id: str | None,
    licence_id: str | None,
    status: ViolationStatusName | None,
    cursor: str | None,
    limit: int,
) -> query.ListViolationsRequest:
    request = query.ListViolationsRequest(
        caller=caller,
        status=status_to_proto(status),
        page=common.PageRequest(page_size=limit, cursor=cursor or ""),
    )
    if vehicle_id is not None:
        request.vehicle_id = vehicle_id
    elif licence_id is not None:
        request.licence_id = licence_id
    return request


def online_handling_out(value: common.OnlineHandling) -> OnlineHandlingOut | None:
    if value.availability == common.OnlineHandling.AVAILABILITY_UNSPECIFIED:
        return None
    availability: Availability = _AVAILABILITY.get(value.availability, "unknown")
    return OnlineHandlingOut(
        allowed=None if availability == "unknown" else availability == "allowed",
        availability=availability,
        route=_opt(value.route),
        reason_code=_opt(value.reason_code),
        reason=_opt(value.reason_zh),
        reason_en=_opt(value.reason_en),
    )


def violation_out(v: query.ViolationView) -> ViolationOut:
    return ViolationOut(
        violation_id=v.violation_id,
        vehicle_id=_opt(v.vehicle_id),
        plate_type=_plate_type(v.plate_type),
        plate_number=v.plate_number,
        licence_id=_opt(v.licence_id),
        occurred_at=_timestamp(v.occurred_at),
        place=v.place,
        violation_code=v.violation_code,
        description_zh=v.description_zh,
        fine_fen=v.fine_fen,
        points=v.points,
        source=_source(v.source),
        procedure=_procedure(v.procedure),
        status=_status(v.status),
        decision_no=_opt(v.decision_no),
        decision_date=_date(v.decision_date),
        due_date=_date(v.due_date),
        late_fee_fen=v.late_fee_fen,
        amount_due_fen=v.amount_due_fen,
        disputed=v.disputed,
        online_handling=online_handling_out(v.online_handling)
        if v.HasField("online_handling")
        else None,
    )


def violation_list_out(response: query.ListViolationsResponse) -> ViolationListOut:
    return ViolationListOut(
        violations=[violation_out(v) for v in response.violations],
        next_cursor=_opt(response.next_cursor),
    )
