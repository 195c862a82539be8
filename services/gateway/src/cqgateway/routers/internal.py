"""Counter API (``/internal/v1``): staff only, every call audited (cqgateway.audit).

Routes record in the audit context which subjects a call concerns (``plate:``,
``licence_no:``, ``vehicle:``, ``licence:``, ``person:``, ``violation:``), so a supervisor
can find every read of a person's data (R-USR-2) with ``GET /internal/v1/audit?subject=``.
"""

from __future__ import annotations

from typing import Annotated

from cqcommon.errors import (
    DECISION_DATE_BEFORE_VIOLATION,
    DECISION_DATE_IN_FUTURE,
    DECISION_INCOMPLETE,
    DECISION_NO_CONFLICT,
    DECISION_REQUIRED,
    INVALID_CURSOR,
    INVALID_DECISION_DATE,
    INVALID_DECISION_NO,
    INVALID_FINE,
    INVALID_ID_NUMBER,
    INVALID_PLATE_NUMBER,
    INVALID_PLATE_TYPE,
    INVALID_VIOLATION_CODE,
    INVALID_VIOLATION_RECORD,
    LICENCE_NOT_FOUND,
    NOT_FOUND,
    OCCURRED_AT_IN_FUTURE,
    OCCURRED_AT_TOO_EARLY,
    SERVICE_UNAVAILABLE,
    SOURCE_RECORD_CONFLICT,
    UNKNOWN_VIOLATION_CODE,
    VEHICLE_NOT_FOUND,
    DomainError,
)
from cqcommon.grpc_client import call
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.query.v1 import query_pb2
from fastapi import APIRouter, Query, Request, Response

from cqgateway import mappers
from cqgateway.audit import AuditContext, audit_context
from cqgateway.deps import Context, JsonBody, StaffUser, SupervisorUser
from cqgateway.handling_codes import ALERT_ERRORS, COUNTER_HANDLE_ERRORS, DISPUTE_ERRORS
from cqgateway.openapi import error_codes
from cqgateway.routers.violations import PathId
from cqgateway.schemas import (
    AuditEntryOut,
    AuditListOut,
    DisputeBody,
    HandleAtCounterBody,
    HandlingOut,
    PlateTypeCode,
    PointsBuyingAlertListOut,
    RecordViolationBody,
    StaffLookupOut,
    ViolationRecord,
)

router = APIRouter(prefix="/internal/v1", tags=["counter"])

Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of a page.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Violations per page.")]

_STAFF_LOOKUP_ERRORS = (
    "401 `UNAUTHENTICATED`, `TOKEN_INVALID` (also for a mini-program token); 404 `NOT_FOUND` "
    "when no record matches; 422 `VALIDATION_FAILED` (missing parameter, `limit` outside "
    "1..100); 400 `INVALID_CURSOR` for a cursor not from this endpoint; 503 "
    "`AUDIT_UNAVAILABLE` when the audit row cannot be written (nothing is shown unaudited)."
)


def _audit_answer(audit: AuditContext | None, answer: query_pb2.LookupResponse) -> None:
    """R-USR-2: whose data the answer shows: the vehicle or licence, its owner or holder, and
    the vehicles and licences its violations name (unset ids are skipped)."""
    if audit is None:
        return
    audit.add_subject("vehicle", answer.vehicle.vehicle_id)
    audit.add_subject("licence", answer.licence.licence_id)
    audit.add_subject("person", answer.vehicle.owner.person_id)
    audit.add_subject("person", answer.licence.holder.person_id)
    for violation in answer.violations:
        audit.add_subject("vehicle", violation.vehicle_id)
        audit.add_subject("licence", violation.licence_id)


@router.post(
    "/violations",
    status_code=201,
    response_model=ViolationRecord,
    dependencies=[JsonBody],
    summary="Record a violation from an enforcement system",
    description=(
        "Idempotent by (`source_system`, `source_record_id`): 201 when recorded, 200 with the "
        "first record when the same source record is sent again. Identifier formats answer 400 "
        "with `INVALID_PLATE_NUMBER`, `INVALID_ID_NUMBER` (licence_no), "
        "`INVALID_VIOLATION_CODE`, `INVALID_DECISION_NO`. A record carries `decision_no` and "
        "`decision_date` together or neither: on-site records always have a decision; a "
        "non-site record that needs the general procedure (fine over 200 yuan) arrives "
        "without one and is recorded `unhandled` (it is handled at a counter). Implausible "
        "times answer 400 (`OCCURRED_AT_IN_FUTURE`, `OCCURRED_AT_TOO_EARLY`, "
        "`DECISION_DATE_BEFORE_VIOLATION`, `DECISION_DATE_IN_FUTURE`); a decision number "
        "already used by another violation answers 409 `DECISION_NO_CONFLICT`."
    ),
    responses={
        200: {"model": ViolationRecord, "description": "A replay of a recorded source record."}
    },
    # The adjudication service's answers: identifier formats checked here, the record's
    # plausibility and its replay checked there.
    openapi_extra=error_codes(
        INVALID_PLATE_NUMBER,
        INVALID_PLATE_TYPE,
        INVALID_ID_NUMBER,
        INVALID_VIOLATION_CODE,
        INVALID_DECISION_NO,
        DECISION_REQUIRED,
        INVALID_FINE,
        INVALID_VIOLATION_RECORD,
        UNKNOWN_VIOLATION_CODE,
        SOURCE_RECORD_CONFLICT,
        VEHICLE_NOT_FOUND,
        LICENCE_NOT_FOUND,
        DECISION_NO_CONFLICT,
        DECISION_INCOMPLETE,
        INVALID_DECISION_DATE,
        DECISION_DATE_BEFORE_VIOLATION,
        DECISION_DATE_IN_FUTURE,
        OCCURRED_AT_IN_FUTURE,
        OCCURRED_AT_TOO_EARLY,
    ),
)
async def record_violation(
    body: RecordViolationBody,
    staff: StaffUser,
    request: Request,
    response: Response,
    ctx: Context,
) -> ViolationRecord:
    # Decode first: subjects are recorded in canonical form (渝a12345 → 渝A12345) so that
    # one audit query finds every call about the same plate.
    grpc_request = mappers.record_violation_request(body, staff.caller)
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("plate", f"{body.plate_type}:{grpc_request.plate_number}")
        audit.add_subject("licence_no", grpc_request.licence_no)
    result = await call(
        ctx.require_backends().adjudication.RecordViolation,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_violation(audit, result.violation)
    response.status_code = 201 if result.created else 200
    return mappers.violation_record_out(result.violation)


def _audit_violation(audit: AuditContext | None, violation: adj.Violation) -> None:
    """R-USR-2: the violation a counter call changed, its vehicle and its driver's licence."""
    if audit is None:
        return
    audit.add_subject("violation", violation.violation_id)
    audit.add_subject("vehicle", violation.vehicle_id)
    audit.add_subject("licence", violation.licence_id)


@router.post(
    "/violations/{violation_id}/handle",
    status_code=201,
    response_model=HandlingOut,
    dependencies=[JsonBody],
    summary="Handle a violation in person at the counter",
    description=(
        "The clerk checked the identity of the holder of `licence_no` at the desk (the "
        "`counter` face adapter records that). The online limits of fine and licence class do "
        "not apply, so this is how a non-site violation over 200 yuan gets its decision; the "
        "points limit still does (R-ADJ-5). Answers the handling, `route` = `counter`, with "
        "its decision; the violation becomes `handled_unpaid`. The same call again (same "
        "licence) answers the same handling; a violation handled otherwise, decided or paid "
        "answers 409, a disputed one or one that would take the licence past the points "
        "limit 403 with `details.reasons`. Audited with subjects `violation:<id>`, "
        "`licence_no:<no>`, then `licence:<id>` of the licence the points went on. Errors: "
        "400 `INVALID_ID_NUMBER` (licence_no); 404 `NOT_FOUND` / `VIOLATION_NOT_FOUND` / "
        "`LICENCE_NOT_FOUND`."
    ),
    openapi_extra=error_codes(*COUNTER_HANDLE_ERRORS),
)
async def handle_at_counter(
    violation_id: PathId,
    body: HandleAtCounterBody,
    staff: StaffUser,
    request: Request,
    ctx: Context,
) -> HandlingOut:
    grpc_request = mappers.handle_at_counter_request(staff.caller, violation_id, body)
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("violation", violation_id)
        audit.add_subject("licence_no", grpc_request.handler_licence_no)
    handling = await call(
        ctx.require_backends().adjudication.HandleAtCounter,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    if audit is not None:
        audit.add_subject("licence", handling.handler_licence_id)
    return mappers.handling_out(handling)


@router.post(
    "/violations/{violation_id}/dispute",
    response_model=ViolationRecord,
    dependencies=[JsonBody],
    summary="Mark a violation as disputed (R-ADJ-9)",
    description=(
        "The person disputes the facts (对违法事实有异议): the violation is marked `disputed`, "
        "which blocks online handling and payment until a clerk clears it with `/undispute`. "
        "Marking a disputed violation again keeps it disputed. Audited with subjects "
        "`violation:<id>`, `vehicle:<id>`, `licence:<id>`. Errors: 404 `NOT_FOUND` / "
        "`VIOLATION_NOT_FOUND`."
    ),
    openapi_extra=error_codes(*DISPUTE_ERRORS),
)
async def dispute_violation(
    violation_id: PathId,
    body: DisputeBody,
    staff: StaffUser,
    request: Request,
    ctx: Context,
) -> ViolationRecord:
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("violation", violation_id)
    violation = await call(
        ctx.require_backends().adjudication.DisputeViolation,
        mappers.dispute_request(staff.caller, violation_id, body),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_violation(audit, violation)
    return mappers.violation_record_out(violation)


@router.post(
    "/violations/{violation_id}/undispute",
    response_model=ViolationRecord,
    summary="Clear a violation's dispute (R-ADJ-9)",
    description=(
        "Online handling and payment are possible again (where the other rules allow). "
        "Clearing an undisputed violation leaves it as it is. Audited with subjects "
        "`violation:<id>`, `vehicle:<id>`, `licence:<id>`. Errors: 404 `NOT_FOUND` / "
        "`VIOLATION_NOT_FOUND`."
    ),
    openapi_extra=error_codes(*DISPUTE_ERRORS),
)
async def undispute_violation(
    violation_id: PathId,
    staff: StaffUser,
    request: Request,
    ctx: Context,
) -> ViolationRecord:
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("violation", violation_id)
    violation = await call(
        ctx.require_backends().adjudication.UndisputeViolation,
        mappers.undispute_request(staff.caller, violation_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_violation(audit, violation)
    return mappers.violation_record_out(violation)


@router.get(
    "/alerts/points-buying",
    response_model=PointsBuyingAlertListOut,
    summary="Points-buying alerts (R-X-2)",
    description=(
        "Any staff role. Online handlings the points-buying guard refused, newest first: one "
        "licence taking points for more than 3 other people's vehicles in a scoring cycle, or "
        "one vehicle's points going to more than 3 licences (limits configurable). Audited "
        "with the subjects `licence:`, `vehicle:`, `person:` and `violation:` each alert "
        "names. Errors: 400 `INVALID_CURSOR`; 422 `VALIDATION_FAILED` (`limit` outside 1..100)."
    ),
    openapi_extra=error_codes(*ALERT_ERRORS),
)
async def list_points_buying_alerts(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Alerts per page.")] = 20,
) -> PointsBuyingAlertListOut:
    answer = await call(
        ctx.require_backends().adjudication.ListPointsBuyingAlerts,
        mappers.points_buying_alerts_request(staff.caller, cursor=cursor, limit=limit),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    audit = audit_context(request)
    if audit is not None:
        for alert in answer.alerts:
            audit.add_subject("licence", alert.licence_id)
            audit.add_subject("vehicle", alert.vehicle_id)
            audit.add_subject("person", alert.handler_person_id)
            audit.add_subject("violation", alert.violation_id)
    return mappers.points_buying_alert_list_out(answer)


@router.get(
    "/vehicles",
    response_model=StaffLookupOut,
    summary="A vehicle by plate, unmasked, with its violations (audited)",
    description=(
        "Any staff role. The full record (owner unmasked, full VIN) and one page of its "
        "violations, newest first. Audited (R-USR-2) with subjects `plate:<type>:<plate>` "
        "(canonical plate, e.g. `plate:02:渝A12345`), then `vehicle:<id>`, "
        "`person:<owner id>` and the licences its violations name. Errors: 400 "
        "`INVALID_PLATE_NUMBER`; 422 `VALIDATION_FAILED` also for a `plate_type` other than "
        "01 02 07 51 52; " + _STAFF_LOOKUP_ERRORS
    ),
    openapi_extra=error_codes(INVALID_PLATE_NUMBER, INVALID_PLATE_TYPE, NOT_FOUND, INVALID_CURSOR),
)
async def staff_get_vehicle(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    plate_type: Annotated[PlateTypeCode, Query(description="National plate-type code.")],
    plate_number: Annotated[str, Query(min_length=1, max_length=16, description="e.g. 渝A12345")],
    cursor: Cursor = None,
    limit: Limit = 20,
) -> StaffLookupOut:
    grpc_request = mappers.staff_vehicle_request(
        staff.caller, plate_type=plate_type, plate_number=plate_number, cursor=cursor, limit=limit
    )
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("plate", f"{plate_type}:{grpc_request.plate_number}")
    answer = await call(
        ctx.require_backends().query.StaffGetVehicle,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_answer(audit, answer)
    return mappers.staff_lookup_out(answer)


@router.get(
    "/licences",
    response_model=StaffLookupOut,
    summary="A driver licence by licence number, unmasked, with its violations (audited)",
    description=(
        "Any staff role. The full record (holder unmasked, points dashboard) and one page of "
        "its violations, newest first. Audited (R-USR-2) with subjects `licence_no:<no>`, then "
        "`licence:<id>`, `person:<holder id>` and the vehicles its violations name. Errors: "
        "400 `INVALID_ID_NUMBER` (licence_no); " + _STAFF_LOOKUP_ERRORS
    ),
    openapi_extra=error_codes(INVALID_ID_NUMBER, NOT_FOUND, INVALID_CURSOR),
)
async def staff_get_licence(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    licence_no: Annotated[
        str, Query(min_length=1, max_length=32, description="18-char ID number.")
    ],
    cursor: Cursor = None,
    limit: Limit = 20,
) -> StaffLookupOut:
    grpc_request = mappers.staff_licence_request(
        staff.caller, licence_no=licence_no, cursor=cursor, limit=limit
    )
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("licence_no", grpc_request.licence_no)
    answer = await call(
        ctx.require_backends().query.StaffGetLicence,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_answer(audit, answer)
    return mappers.staff_lookup_out(answer)


@router.get(
    "/audit",
    response_model=AuditListOut,
    summary="The audit trail (supervisor)",
    description=(
        "Newest first. `subject` matches one recorded subject exactly, e.g. "
        "`vehicle:<vehicle_id>`, `licence:<licence_id>`, `person:<person_id>`, "
        "`plate:02:渝A12345`, `licence_no:<no>`, `violation:<id>`, `staff:<username>`."
    ),
)
async def list_audit(
    _supervisor: SupervisorUser,
    ctx: Context,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditListOut:
    if ctx.audit is None:
        raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "starting"})
    rows = await ctx.audit.list(
        subject=subject,
        staff_id=staff_id,
        before_id=int(cursor) if cursor else None,
        limit=limit,
    )
    entries = [
        AuditEntryOut(
            audit_id=r.audit_id,
            occurred_at=r.occurred_at,
            staff_id=r.staff_id,
            role=r.role,
            method=r.method,
            path=r.path,
            query=r.query,
            subjects=r.subjects,
            status_code=r.status_code,
            trace_id=r.trace_id,
        )
        for r in rows
    ]
    next_cursor = str(rows[-1].audit_id) if len(rows) == limit else None
    return AuditListOut(entries=entries, next_cursor=next_cursor)
