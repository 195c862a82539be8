"""Counter payments (``/internal/v1``): a payment taken at the desk (R-PAY-5, idempotent like
the online one, R-PAY-3), the refunds of duplicate payments and their approval by a
supervisor (R-PAY-5), and the users' payment feedback with the provider's view (R-PAY-9).

Staff only, every call audited (``cqgateway.audit``) like the other counter calls, with
subjects ``decision:<decision_no>``, ``payment:<payment_id>`` and ``refund:<refund_id>``
for what a call concerns.
"""

from __future__ import annotations

from typing import Annotated

from cqcommon.grpc_client import call
from fastapi import APIRouter, Path, Query, Request, Response

from cqgateway import mappers
from cqgateway.audit import AuditContext, audit_context
from cqgateway.deps import Context, JsonBody, StaffUser, SupervisorUser
from cqgateway.openapi import error_codes
from cqgateway.payment_codes import APPROVE_REFUND_ERRORS, COUNTER_PAYMENT_ERRORS
from cqgateway.responses import json_of
from cqgateway.routers.payments import (
    CREATED_RESPONSE,
    created,
    idempotency_key_of,
    idempotent_operation,
)
from cqgateway.routers.violations import ID_PATTERN
from cqgateway.schemas import (
    CounterPaymentBody,
    PaymentOut,
    RefundListOut,
    RefundOut,
    RefundStatusFilter,
    StaffFeedbackListOut,
)

router = APIRouter(prefix="/internal/v1", tags=["counter"])

RefundId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


def _audit_refund(audit: AuditContext | None, refund_id: str, payment_id: str, no: str) -> None:
    if audit is None:
        return
    audit.add_subject("refund", refund_id)
    audit.add_subject("payment", payment_id)
    audit.add_subject("decision", no)


@router.post(
    "/payments/counter",
    status_code=201,
    response_model=PaymentOut,
    dependencies=[JsonBody],
    responses=CREATED_RESPONSE,
    summary="A payment taken at the counter (Idempotency-Key header)",
    description=(
        "Any staff role. The clerk took the amount due today in `cash` or by `card`: the "
        "payment is `succeeded` at once and the violation becomes `paid`. An online trade "
        "still open for the decision is closed first; if it was paid meanwhile the answer is "
        "409 `ALREADY_PAID` and no money is taken (R-PAY-5 refunds the rare duplicate). "
        "`Idempotency-Key` works as for `POST /api/v1/payments` (scoped to the staff "
        "account): 400 missing or malformed, the first answer replayed byte for byte with "
        "`Idempotent-Replayed: true`, 422 `IDEMPOTENCY_KEY_REUSED` for another request, 409 "
        "`IDEMPOTENCY_KEY_IN_USE` while the first runs. 503 `MAINTENANCE_WINDOW` with "
        "`Retry-After` (R-PAY-6). Audited with subjects `decision:<decision_no>`, then "
        "`payment:<payment_id>`."
    ),
    openapi_extra=idempotent_operation(*COUNTER_PAYMENT_ERRORS),
)
async def counter_payment(
    body: CounterPaymentBody,
    staff: StaffUser,
    request: Request,
    ctx: Context,
) -> Response:
    grpc_request = mappers.counter_payment_request(staff.caller, body, idempotency_key_of(request))
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("decision", grpc_request.decision_no)
    answer = await call(
        ctx.require_backends().payment.CreateCounterPayment,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    if audit is not None:
        audit.add_subject("payment", answer.payment.payment_id)
    return created(answer)


@router.get(
    "/refunds",
    response_model=RefundListOut,
    summary="Refunds of duplicate payments (R-PAY-5)",
    description=(
        "Any staff role. `status` filters by state: `pending_approval` (API.md's `pending` "
        "is the same), `approved`, `refunded`, `failed`; none: every refund. Audited with "
        "the subjects `refund:`, `payment:` and `decision:` of every refund listed."
    ),
)
async def list_refunds(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    status: Annotated[RefundStatusFilter | None, Query(description="A refund state.")] = None,
) -> Response:
    answer = await call(
        ctx.require_backends().payment.ListRefunds,
        mappers.list_refunds_request(staff.caller, status),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    out = mappers.refund_list_out(answer)
    audit = audit_context(request)
    for refund in answer.refunds:
        _audit_refund(audit, refund.refund_id, refund.payment_id, refund.decision_no)
    return json_of(out)


@router.post(
    "/refunds/{refund_id}/approve",
    response_model=RefundOut,
    summary="Approve a refund (supervisor, R-PAY-5)",
    description=(
        "Supervisor only (403 `FORBIDDEN` for a clerk). The refund goes through the "
        "provider's refund API with a stable request number: an online payment is "
        "`refunded` once Alipay confirms; a counter payment is `refunded` at once (the money "
        "is returned at the desk). If Alipay cannot be reached the refund stays `approved` "
        "and the answer is 503 `ALIPAY_UNAVAILABLE`: approving again retries safely. 409 "
        "`REFUND_NOT_PENDING` for a refund already refunded or failed; 404 "
        "`REFUND_NOT_FOUND`. Audited with subjects `refund:<id>`, then `payment:` and "
        "`decision:`."
    ),
    openapi_extra=error_codes(*APPROVE_REFUND_ERRORS),
)
async def approve_refund(
    refund_id: RefundId,
    supervisor: SupervisorUser,
    request: Request,
    ctx: Context,
) -> Response:
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("refund", refund_id)
    refund = await call(
        ctx.require_backends().payment.ApproveRefund,
        mappers.approve_refund_request(supervisor.caller, refund_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    _audit_refund(audit, refund.refund_id, refund.payment_id, refund.decision_no)
    return json_of(mappers.refund_out(refund))


@router.get(
    "/payments/feedback",
    response_model=StaffFeedbackListOut,
    summary="Users' payment feedback with the provider's status (R-PAY-9)",
    description=(
        "Any staff role; an addition to API.md. Newest first, each with our state of the "
        "payment and the provider's trade status asked now (`UNKNOWN` when Alipay did not "
        "answer in time, `NONE` for a counter payment). Audited with the subjects "
        "`payment:` and `decision:` of every entry."
    ),
)
async def list_feedback(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=100, description="Entries, newest first.")] = 50,
) -> Response:
    answer = await call(
        ctx.require_backends().payment.ListFeedback,
        mappers.list_feedback_request(staff.caller, limit),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    out = mappers.staff_feedback_list_out(answer)
    audit = audit_context(request)
    if audit is not None:
        for entry in answer.feedback:
            audit.add_subject("payment", entry.payment_id)
            audit.add_subject("decision", entry.decision_no)
    return json_of(out)
