"""Counter API (``/internal/v1``): staff only, every call audited (cqgateway.audit)."""

from __future__ import annotations

from typing import Annotated

from cqcommon.errors import SERVICE_UNAVAILABLE, DomainError
from cqcommon.grpc_client import call
from fastapi import APIRouter, Query, Request, Response

from cqgateway import mappers
from cqgateway.audit import audit_context
from cqgateway.deps import Context, JsonBody, StaffUser, SupervisorUser
from cqgateway.schemas import (
    AuditEntryOut,
    AuditListOut,
    RecordViolationBody,
    ViolationRecord,
)

router = APIRouter(prefix="/internal/v1", tags=["counter"])


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
        "`INVALID_VIOLATION_CODE`, `INVALID_DECISION_NO`."
    ),
    responses={
        200: {"model": ViolationRecord, "description": "A replay of a recorded source record."}
    },
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
    if audit is not None:
        audit.add_subject("violation", result.violation.violation_id)
        audit.add_subject("vehicle", result.violation.vehicle_id)
        audit.add_subject("licence", result.violation.licence_id)
    response.status_code = 201 if result.created else 200
    return mappers.violation_record_out(result.violation)


@router.get(
    "/audit",
    response_model=AuditListOut,
    summary="The audit trail (supervisor)",
    description=(
        "Newest first. `subject` matches one recorded subject exactly, e.g. "
        "`vehicle:<vehicle_id>`, `licence:<licence_id>`, `plate:02:渝A12345`, "
        "`licence_no:<no>`, `violation:<id>`, `staff:<username>`."
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
