"""Conversions between the shared proto types (cqtraffic.common.v1) and plain Python
values, used by every service's mappers and the gateway: plate types, enums as
lower-case strings, dates and timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from google.protobuf.timestamp_pb2 import Timestamp

from cqcommon.checkpoints import JobBatch
from cqcommon.identifiers import PlateType

_PLATE_TO_PROTO: dict[PlateType, common.PlateType.ValueType] = {
    PlateType.LARGE_CAR: common.PLATE_TYPE_LARGE_CAR,
    PlateType.SMALL_CAR: common.PLATE_TYPE_SMALL_CAR,
    PlateType.MOTORCYCLE: common.PLATE_TYPE_MOTORCYCLE,
    PlateType.LARGE_NEV: common.PLATE_TYPE_LARGE_NEV,
    PlateType.SMALL_NEV: common.PLATE_TYPE_SMALL_NEV,
}
_PLATE_FROM_PROTO = {v: k for k, v in _PLATE_TO_PROTO.items()}

SOURCES: dict[str, common.ViolationSource.ValueType] = {
    "non_site": common.VIOLATION_SOURCE_NON_SITE,
    "on_site": common.VIOLATION_SOURCE_ON_SITE,
}
PROCEDURES: dict[str, common.Procedure.ValueType] = {
    "simple": common.PROCEDURE_SIMPLE,
    "general": common.PROCEDURE_GENERAL,
}
STATUSES: dict[str, common.ViolationStatus.ValueType] = {
    "unhandled": common.VIOLATION_STATUS_UNHANDLED,
    "handled_unpaid": common.VIOLATION_STATUS_HANDLED_UNPAID,
    "paid": common.VIOLATION_STATUS_PAID,
}


SOURCE_NAMES = {v: k for k, v in SOURCES.items()}
PROCEDURE_NAMES = {v: k for k, v in PROCEDURES.items()}
STATUS_NAMES = {v: k for k, v in STATUSES.items()}


def plate_type_to_proto(value: str | PlateType) -> common.PlateType.ValueType:
    return _PLATE_TO_PROTO[PlateType(value)]


def plate_type_from_proto(value: int) -> PlateType | None:
    """The plate type, or None for UNSPECIFIED / unknown numbers."""
    for proto_value, plate in _PLATE_FROM_PROTO.items():
        if proto_value == value:
            return plate
    return None


def date_to_proto(value: date | None) -> common.Date:
    if value is None:
        return common.Date()
    return common.Date(year=value.year, month=value.month, day=value.day)


def date_from_proto(value: common.Date) -> date | None:
    """None for the unset (all-zero) date."""
    if value.year == 0:
        return None
    return date(value.year, value.month, value.day)


def timestamp_to_proto(value: datetime | None) -> Timestamp:
    ts = Timestamp()
    if value is not None:
        ts.FromDatetime(value.astimezone(UTC))
    return ts


def timestamp_from_proto(value: Timestamp) -> datetime | None:
    if value.seconds == 0 and value.nanos == 0:
        return None
    return value.ToDatetime(tzinfo=UTC)


# -- RunJob (cqtraffic/common/v1/jobs.proto): the same in every service -------------------
def run_job_as_of(request: jobs_pb2.RunJobRequest) -> datetime | None:
    """The runner's "now" (its --now), or None: the service's own clock decides."""
    return timestamp_from_proto(request.as_of) if request.HasField("as_of") else None


def run_job_response(batch: JobBatch) -> jobs_pb2.RunJobResponse:
    return jobs_pb2.RunJobResponse(
        items_done=batch.items_done,
        checkpoint=batch.checkpoint,
        done=batch.done,
        errors=batch.errors,
        message=batch.message,
    )
