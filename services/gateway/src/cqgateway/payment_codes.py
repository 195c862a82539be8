"""Which error codes the payment routes answer (their ``openapi_extra=error_codes(...)``).

The codes live in the one table, ``cqcommon.errors`` (section "payment", plus
``INVALID_DECISION_NO``, ``ALREADY_PAID`` and ``ALIPAY_UNAVAILABLE``); this module only
groups them per route, like ``cqgateway.handling_codes`` does for handlings, so
/openapi.json names every code a payment route can answer. What a route's parts imply
(401, 422, 413, 503 ``SERVICE_UNAVAILABLE`` …) is added by ``cqgateway.openapi``.
"""

from __future__ import annotations

from cqcommon.errors import (
    ALIPAY_UNAVAILABLE,
    ALREADY_PAID,
    BODY_TOO_LARGE,
    DECISION_DISPUTED,
    DECISION_NOT_FOUND,
    DECISION_NOT_PAYABLE_HERE,
    FEEDBACK_LIMIT_REACHED,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_INVALID,
    IDEMPOTENCY_KEY_REQUIRED,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_DECISION_NO,
    INVALID_PAYMENT_METHOD,
    MAINTENANCE_WINDOW,
    PAYMENT_IN_PROGRESS,
    PAYMENT_NOT_FOUND,
    PAYMENT_PROVIDER_REFUSED,
    RECEIPT_NOT_AVAILABLE,
    REFUND_NOT_FOUND,
    REFUND_NOT_PENDING,
    ErrorSpec,
)

#: R-PAY-3: the Idempotency-Key header (missing 400, malformed 400, another body 422, the
#: first request still running 409).
IDEMPOTENCY: tuple[ErrorSpec, ...] = (
    IDEMPOTENCY_KEY_REQUIRED,
    IDEMPOTENCY_KEY_INVALID,
    IDEMPOTENCY_KEY_REUSED,
    IDEMPOTENCY_KEY_IN_USE,
)

#: A decision number that is malformed (400) or unknown (404).
DECISION_LOOKUP: tuple[ErrorSpec, ...] = (INVALID_DECISION_NO, DECISION_NOT_FOUND)

#: Why a decision cannot be paid now: R-PAY-1 (not a Chongqing decision, 403), R-ADJ-9
#: (disputed), R-PAY-3 (paid, or a payment in progress), R-PAY-6 (the maintenance window,
#: 503 with Retry-After).
NOT_PAYABLE_NOW: tuple[ErrorSpec, ...] = (
    DECISION_NOT_PAYABLE_HERE,
    DECISION_DISPUTED,
    ALREADY_PAID,
    PAYMENT_IN_PROGRESS,
    MAINTENANCE_WINDOW,
)

GET_DECISION_ERRORS: tuple[ErrorSpec, ...] = DECISION_LOOKUP
CREATE_PAYMENT_ERRORS: tuple[ErrorSpec, ...] = (
    *IDEMPOTENCY,
    *DECISION_LOOKUP,
    *NOT_PAYABLE_NOW,
    PAYMENT_PROVIDER_REFUSED,
    ALIPAY_UNAVAILABLE,
)
#: A payment id the caller may not see answers exactly like an unknown one.
GET_PAYMENT_ERRORS: tuple[ErrorSpec, ...] = (PAYMENT_NOT_FOUND,)
RECEIPT_ERRORS: tuple[ErrorSpec, ...] = (PAYMENT_NOT_FOUND, RECEIPT_NOT_AVAILABLE)
FEEDBACK_ERRORS: tuple[ErrorSpec, ...] = (PAYMENT_NOT_FOUND, FEEDBACK_LIMIT_REACHED)
#: The notification answers plain text (``success`` / ``fail``) for everything it decides
#: itself; only the body-size middleware answers before it, with the JSON envelope.
NOTIFY_ERRORS: tuple[ErrorSpec, ...] = (BODY_TOO_LARGE,)

COUNTER_PAYMENT_ERRORS: tuple[ErrorSpec, ...] = (
    *IDEMPOTENCY,
    *DECISION_LOOKUP,
    *NOT_PAYABLE_NOW,
    INVALID_PAYMENT_METHOD,
)
APPROVE_REFUND_ERRORS: tuple[ErrorSpec, ...] = (
    REFUND_NOT_FOUND,
    REFUND_NOT_PENDING,
    ALIPAY_UNAVAILABLE,
)
