"""``POST /api/v1/alipay/notify``: Alipay's asynchronous trade notification (R-PAY-7).

Alipay posts the trade's new state as a form (``application/x-www-form-urlencoded``), signed
with its RSA2 key, with no token; it retries (4 min … 15 h) until the body of the answer is
exactly ``success``. So this endpoint speaks plain text, never the JSON error envelope:

* **200 ``success``**: the payment service verified and recorded the notification (or had
  recorded it already: a redelivery changes nothing, R-PAY-3);
* **400 ``fail``**: the notification is refused: not a well-formed UTF-8 form, a name sent
  twice, a forbidden character (NUL, controls, bidi, zero-width: ``cqcommon.text``; line
  breaks only in the free-text ``subject``/``body``), over ``NOTIFY_MAX_BYTES``, or rejected
  by the service (bad signature, app id, seller, amount, unknown trade);
* **503 ``fail``**: the payment service could not be asked (down, starting, its own
  failure). Alipay retries, and the retry is recorded once the service is back.

Nothing here is a 500 for a bad notification: every failure of the parse or of the call is
one of the answers above. The body is parsed here, not by the JSON request models
(``schemas.StrictRequest``): a genuine notification carries Chinese text (``subject``), JSON
in ``fund_bill_list`` and base64 in ``sign``, all of which pass; the character check is
applied to every name and value instead. A refusal is logged at WARNING with its reason and
the order number only (a well-formed one): never the signature or the other fields.

The signature, app id, seller id and amount are the payment service's to check
(``RecordProviderNotification``); every field is passed on exactly as posted.
"""

from __future__ import annotations

import email.message
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from cqcommon.errors import DomainError, ErrorKind
from cqcommon.grpc_client import call
from cqcommon.metrics import alipay_notification_rejected
from cqcommon.text import forbidden_position
from cqtraffic.payment.v1 import payment_pb2 as pay
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from cqgateway.deps import Context
from cqgateway.openapi import error_codes
from cqgateway.payment_codes import NOTIFY_ERRORS

log = logging.getLogger("cqgateway.alipay_notify")

router = APIRouter(prefix="/api/v1", tags=["alipay"])

SUCCESS = "success"
FAIL = "fail"
#: A trade_status_sync notification is 1-3 KB; 16 KB leaves room for voucher lists.
NOTIFY_MAX_BYTES = 16 * 1024
NOTIFY_MAX_FIELDS = 100
#: Fields that echo free text we sent at trade creation: line breaks are not refused there.
FREE_TEXT_FIELDS = frozenset({"subject", "body"})
FORM_TYPE = "application/x-www-form-urlencoded"
_LOGGABLE_ORDER_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Service error kinds that mean "this notification is wrong" (400); any other kind means
#: the service could not decide now (503), and Alipay's retry will be answered later.
_REFUSING_KINDS = frozenset(
    {
        ErrorKind.INVALID,
        ErrorKind.NOT_FOUND,
        ErrorKind.FORBIDDEN,
        ErrorKind.UNAUTHENTICATED,
        ErrorKind.CONFLICT,
    }
)


class NotificationRefusedError(ValueError):
    """A notification the gateway refuses before asking the service; ``reason`` is stable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_utf8_form(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_type() != FORM_TYPE:
        return False
    charset = message.get_param("charset")
    return charset is None or (isinstance(charset, str) and charset.lower() in ("utf-8", "utf8"))


def parse_notification(body: bytes, content_type: str) -> dict[str, str]:
    """The form fields of a notification, exactly as posted (percent- and ``+``-decoded).

    Raises ``NotificationRefusedError`` with a stable reason: ``not_form``, ``too_large``,
    ``empty``, ``malformed`` (not UTF-8, a part without ``=``, too many fields),
    ``duplicate_field``, ``invalid_characters``.
    """
    if not _is_utf8_form(content_type):
        raise NotificationRefusedError("not_form")
    if len(body) > NOTIFY_MAX_BYTES:
        raise NotificationRefusedError("too_large")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=NOTIFY_MAX_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise NotificationRefusedError("malformed") from exc
    if not pairs:
        raise NotificationRefusedError("empty")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # Which of two values was signed is a guess: refuse rather than pick one.
            raise NotificationRefusedError("duplicate_field")
        free_text = name in FREE_TEXT_FIELDS
        if (
            not name
            or forbidden_position(name) is not None
            or forbidden_position(value, allow_newlines=free_text) is not None
        ):
            raise NotificationRefusedError("invalid_characters")
        params[name] = value
    return params


def loggable_order_no(params: dict[str, str]) -> str:
    """The order number for a log line, or ``-`` when it is absent or not a plain token."""
    value = params.get("out_trade_no", "")
    return value if _LOGGABLE_ORDER_NO.fullmatch(value) else "-"


def _plain(text: str, status: int) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status)


_TEXT_ANSWER = {"text/plain": {"schema": {"type": "string", "enum": [FAIL]}}}
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

#: The answers, documented by hand: plain text (what Alipay reads), except the URL's
#: character check (400 ``INVALID_CHARACTERS``), which answers before any route, as JSON.
NOTIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Recorded (or recorded before): exactly `success`.",
        "content": {"text/plain": {"schema": {"type": "string", "enum": [SUCCESS]}}},
    },
    400: {
        "description": (
            "Refused: `fail` (malformed, forbidden characters, bad signature, app id, seller, "
            "amount or unknown trade); Alipay retries. A forbidden character in the URL "
            "answers the JSON envelope, `INVALID_CHARACTERS`."
        ),
        "content": {**_TEXT_ANSWER, **_ERROR_JSON},
    },
    503: {
        "description": "The payment service could not be asked: `fail`; Alipay retries.",
        "content": _TEXT_ANSWER,
    },
}

#: Alipay's trade_status_sync fields (documentation; every field is passed on as posted).
_NOTIFY_FIELDS = (
    "notify_id",
    "notify_time",
    "notify_type",
    "app_id",
    "auth_app_id",
    "charset",
    "version",
    "sign_type",
    "sign",
    "trade_no",
    "out_trade_no",
    "buyer_id",
    "seller_id",
    "trade_status",
    "total_amount",
    "receipt_amount",
    "buyer_pay_amount",
    "subject",
    "body",
    "gmt_create",
    "gmt_payment",
    "gmt_close",
    "fund_bill_list",
)
NOTIFY_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        FORM_TYPE: {
            "schema": {
                "type": "object",
                "properties": {name: {"type": "string"} for name in _NOTIFY_FIELDS},
                "additionalProperties": {"type": "string"},
            }
        }
    },
}


@router.post(
    "/alipay/notify",
    response_class=PlainTextResponse,
    responses=NOTIFY_RESPONSES,
    summary="Alipay's asynchronous trade notification (form-encoded, signed, no token)",
    description=(
        "R-PAY-7: the form fields are passed to the payment service, which checks the RSA2 "
        "signature with Alipay's public key, then app id, seller id, order number and amount "
        "against our order before anything changes. Answers plain text: 200 `success` once "
        "recorded (a repeated notification changes nothing and is answered `success` again); "
        "400 `fail` for a refused one; 503 `fail` while the payment service cannot be asked. "
        "Accepted during the maintenance window too (R-PAY-6). The form must be "
        "`application/x-www-form-urlencoded` (charset absent or UTF-8), at most "
        f"{NOTIFY_MAX_BYTES} bytes, each name once."
    ),
    openapi_extra={"requestBody": NOTIFY_REQUEST_BODY, **error_codes(*NOTIFY_ERRORS)},
)
async def alipay_notify(request: Request, ctx: Context) -> PlainTextResponse:
    body = await request.body()  # bounded by BodySizeLimitMiddleware, then NOTIFY_MAX_BYTES
    try:
        params = parse_notification(body, request.headers.get("content-type", ""))
    except NotificationRefusedError as exc:
        log.warning("alipay notification refused: %s", exc.reason)
        alipay_notification_rejected(exc.reason)
        return _plain(FAIL, 400)
    order_no = loggable_order_no(params)
    try:
        answer = await call(
            ctx.require_backends().payment.RecordProviderNotification,
            pay.ProviderNotificationRequest(params=params),
            timeout_s=ctx.settings.grpc_deadline_s,
        )
    except DomainError as exc:
        refused = exc.kind in _REFUSING_KINDS
        if refused:
            alipay_notification_rejected(exc.code)
        log.warning(
            "alipay notification not recorded: %s %s (out_trade_no %s)",
            exc.kind.value,
            exc.code,
            order_no,
        )
        return _plain(FAIL, 400 if refused else 503)
    except Exception:
        # Never a 500 to Alipay: it retries, and the retry meets a working service.
        log.exception("alipay notification not recorded (out_trade_no %s)", order_no)
        return _plain(FAIL, 503)
    if answer.accepted:
        return _plain(SUCCESS, 200)
    alipay_notification_rejected(answer.rejected_reason or "unspecified")
    log.warning(
        "alipay notification rejected: %s (out_trade_no %s)",
        answer.rejected_reason or "unspecified",
        order_no,
    )
    return _plain(FAIL, 400)
