"""Mini-program payments (R-PAY-1..9): look a decision up by number, pay it with an
idempotency key, read the payment back (a stuck ``pending`` is resolved with the provider on
the way, R-PAY-4), download its receipt, file feedback on it.

Thin routes over the PaymentService. What is the gateway's own:

* the decision number is checked here (400 ``INVALID_DECISION_NO``, never a generic 422),
  in the path and in bodies;
* the ``Idempotency-Key`` header and the request fingerprint (``cqgateway.idempotency``);
  the service keeps the key and replays the first answer, which is rendered from the stored
  payment only (``mappers.payment_out``), so a replay is the same bytes, with the header
  ``Idempotent-Replayed: true`` added;
* a payment id the caller may not see answers 404 ``PAYMENT_NOT_FOUND`` exactly like an
  unknown one, on every payment endpoint (the service makes no difference either).
"""

from __future__ import annotations

from typing import Annotated, Any

from cqcommon.errors import ErrorSpec
from cqcommon.grpc_client import call
from cqtraffic.payment.v1 import payment_pb2 as pay
from fastapi import APIRouter, Path, Request, Response

from cqgateway import mappers
from cqgateway.deps import Context, CurrentUser, JsonBody
from cqgateway.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER, idempotency_key
from cqgateway.openapi import error_codes
from cqgateway.payment_codes import (
    CREATE_PAYMENT_ERRORS,
    FEEDBACK_ERRORS,
    GET_DECISION_ERRORS,
    GET_PAYMENT_ERRORS,
    RECEIPT_ERRORS,
)
from cqgateway.responses import json_of
from cqgateway.routers.violations import ID_PATTERN
from cqgateway.schemas import (
    CreatePaymentBody,
    FeedbackBody,
    FeedbackOut,
    PayableDecisionOut,
    PaymentOut,
)

router = APIRouter(prefix="/api/v1", tags=["payments"])

DECISION_NO_PATTERN = r"^[0-9]{16}$"
#: The format is documented (pattern) but checked by ``cqcommon.identifiers`` in the route,
#: so a malformed number answers its own code, 400 ``INVALID_DECISION_NO``, not a 422.
DecisionNo = Annotated[
    str,
    Path(
        description="16 digits (the authority's division code and a serial).",
        json_schema_extra={"pattern": DECISION_NO_PATTERN},
    ),
]
PaymentId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
#: The ``Idempotency-Key`` header as /openapi.json shows it: required, with its format. It
#: is not a FastAPI parameter (that would answer a missing or malformed key with a generic
#: 422): the route reads it (``idempotency_key_of``) and answers 400 with its own codes.
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": (
        "1 to 255 visible ASCII characters, new for each new payment (a UUID is a good "
        "choice); scoped to the caller and kept at least 48 h. Missing: 400 "
        "`IDEMPOTENCY_KEY_REQUIRED`; malformed or sent twice: 400 `IDEMPOTENCY_KEY_INVALID`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}


def idempotent_operation(*codes: ErrorSpec) -> dict[str, Any]:
    """``openapi_extra`` of a creation taking an ``Idempotency-Key``: the header and codes."""
    return {"parameters": [IDEMPOTENCY_KEY_PARAMETER], **error_codes(*codes)}


#: The 201 of a creation: the payment, and the replay header when it is a replay.
CREATED_RESPONSE: dict[int | str, dict[str, Any]] = {
    201: {
        "description": (
            "The payment (a replay of the first answer for this key: the same body, byte for "
            "byte, with `Idempotent-Replayed: true`)."
        ),
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this answer replays an earlier request's.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }
}


def idempotency_key_of(request: Request) -> str:
    """The request's one ``Idempotency-Key`` (400 when missing, malformed or repeated)."""
    return idempotency_key(request.headers.getlist(HEADER))


def created(answer: pay.CreatePaymentResponse) -> Response:
    """201 with the payment's JSON (rendered once, deterministically) and the replay flag."""
    response = json_of(mappers.created_payment_out(answer))
    response.status_code = 201
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


@router.get(
    "/decisions/{decision_no}",
    response_model=PayableDecisionOut,
    summary="A penalty decision by number, with the amount due today",
    description=(
        "R-PAY-1/2: any logged-in user may look a decision up by its number and pay it (as at "
        "a bank counter); the party's name and plate are whole only for the decision's own "
        "party (`own`), masked otherwise. `amount_due_fen` is the fine plus the late fee for "
        "today in Asia/Shanghai. A decision of another region is shown with "
        "`payable_here: false` and `not_payable_code` (with its sentences) saying where to "
        "pay. Errors: 400 `INVALID_DECISION_NO` (not 16 digits of a known division); 404 "
        "`DECISION_NOT_FOUND` (a decision just issued may take a few moments to arrive)."
    ),
    openapi_extra=error_codes(*GET_DECISION_ERRORS),
)
async def get_decision(decision_no: DecisionNo, user: CurrentUser, ctx: Context) -> Response:
    request = mappers.get_decision_request(user.caller, decision_no)
    decision = await call(
        ctx.require_backends().payment.GetDecision,
        request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.payable_decision_out(decision))


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentOut,
    dependencies=[JsonBody],
    responses=CREATED_RESPONSE,
    summary="Pay a decision online (Idempotency-Key header)",
    description=(
        "R-PAY-3: creates the payment and its Alipay trade; `trade_no` is what "
        "`my.tradePay` needs. The amount is fixed now and the trade closes at the next "
        "Asia/Shanghai midnight. `Idempotency-Key` is required (400 "
        "`IDEMPOTENCY_KEY_REQUIRED` / `IDEMPOTENCY_KEY_INVALID`); the same key with the same "
        "request answers the first answer again, byte for byte, with `Idempotent-Replayed: "
        "true`; with another request 422 `IDEMPOTENCY_KEY_REUSED`; while the first request "
        "is still running 409 `IDEMPOTENCY_KEY_IN_USE`. Requests are the same when they "
        "differ only in JSON key order, spacing or the spelling of the same decision number. "
        "Refusals: 403 `DECISION_NOT_PAYABLE_HERE`; 409 `ALREADY_PAID`, `PAYMENT_IN_PROGRESS` "
        "(another payer's trade is open), `DECISION_DISPUTED`, `PAYMENT_PROVIDER_REFUSED`; "
        "503 `MAINTENANCE_WINDOW` (R-PAY-6, 22:00-00:30 Beijing time, `Retry-After` in "
        "seconds until 00:30) and `ALIPAY_UNAVAILABLE` (nothing was charged; retry with the "
        "same key)."
    ),
    openapi_extra=idempotent_operation(*CREATE_PAYMENT_ERRORS),
)
async def create_payment(
    body: CreatePaymentBody,
    user: CurrentUser,
    request: Request,
    ctx: Context,
) -> Response:
    grpc_request = mappers.create_payment_request(user.caller, body, idempotency_key_of(request))
    answer = await call(
        ctx.require_backends().payment.CreatePayment,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return created(answer)


@router.get(
    "/payments/{payment_id}",
    response_model=PaymentOut,
    summary="A payment's state",
    description=(
        "R-PAY-4: a payment still `pending` is resolved with the provider at once (paid there: "
        "`succeeded`; closed: `failed`); nothing is ever charged again to settle it. Another "
        "user's payment answers 404 `PAYMENT_NOT_FOUND` exactly like an unknown one."
    ),
    openapi_extra=error_codes(*GET_PAYMENT_ERRORS),
)
async def get_payment(payment_id: PaymentId, user: CurrentUser, ctx: Context) -> Response:
    payment = await call(
        ctx.require_backends().payment.GetPayment,
        mappers.get_payment_request(user.caller, payment_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.payment_out(payment))


@router.get(
    "/payments/{payment_id}/receipt.pdf",
    response_class=Response,
    responses={
        200: {
            "description": (
                "R-PAY-8: the receipt (缴款凭证) of a paid decision as a PDF, sent as an "
                "attachment `receipt-<decision_no>.pdf`."
            ),
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="receipt-<decision_no>.pdf"',
                    "schema": {"type": "string"},
                }
            },
        }
    },
    summary="The receipt of a paid decision (PDF)",
    description=(
        "Only a `succeeded` payment has a receipt (409 `RECEIPT_NOT_AVAILABLE` otherwise). "
        "Another user's payment answers 404 `PAYMENT_NOT_FOUND` like an unknown one."
    ),
    openapi_extra=error_codes(*RECEIPT_ERRORS),
)
async def get_receipt(payment_id: PaymentId, user: CurrentUser, ctx: Context) -> Response:
    document = await call(
        ctx.require_backends().payment.GetReceipt,
        mappers.receipt_request(user.caller, payment_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    filename = mappers.attachment_filename(document.filename)
    return Response(
        content=document.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/payments/{payment_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    dependencies=[JsonBody],
    summary="Feedback on a payment (R-PAY-9)",
    description=(
        'E.g. "paid but not cleared": staff see it with the provider\'s status of the '
        "payment next to it. `text` is 1 to 500 characters (line breaks allowed). 429 "
        "`FEEDBACK_LIMIT_REACHED` once a payment has the most feedback allowed. Another "
        "user's payment answers 404 `PAYMENT_NOT_FOUND` like an unknown one."
    ),
    openapi_extra=error_codes(*FEEDBACK_ERRORS),
)
async def file_feedback(
    payment_id: PaymentId, body: FeedbackBody, user: CurrentUser, ctx: Context
) -> Response:
    answer = await call(
        ctx.require_backends().payment.FileFeedback,
        mappers.feedback_request(user.caller, payment_id, body),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    response = json_of(mappers.feedback_out(answer))
    response.status_code = 201
    return response
