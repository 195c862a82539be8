"""Which error codes the follow routes answer (their ``openapi_extra=error_codes(...)``).

The codes live in the one table, ``cqcommon.errors`` (section "vehicle follow", plus the
identifier codes the gateway checks before any call); this module only groups them per
route, like ``cqgateway.payment_codes``, so /openapi.json names every code a follow route can
answer. What a route's parts imply (401, 404 ``NOT_FOUND`` of a path, 422, 413, 415, 503
``SERVICE_UNAVAILABLE`` …) is added by ``cqgateway.openapi``.

Statuses (``cqgateway.errors``' one table): ``FOLLOW_QUOTA_EXCEEDED`` 429 with the quota in
``details.quota``; ``SMS_RESEND_TOO_SOON`` / ``SMS_PHONE_LOCKED`` 429 with ``Retry-After``
from ``details.retry_after_s``; ``SMS_CODE_WRONG`` 400 with ``details.attempts_left``;
``SMS_CODE_EXPIRED`` 409; the ``*_NOT_FOUND`` codes 404 (also for another user's request or
follow); ``FOLLOW_OWN_*`` 403; ``ALREADY_FOLLOWING`` / ``FOLLOW_REQUEST_NOT_PENDING`` /
``FOLLOW_NO_CONSENT_ROUTE`` 409; ``SMS_UNAVAILABLE`` 503.
"""

from __future__ import annotations

from cqcommon.errors import (
    ALREADY_FOLLOWING,
    FOLLOW_LICENCE_NOT_FOUND,
    FOLLOW_NO_CONSENT_ROUTE,
    FOLLOW_NOT_FOUND,
    FOLLOW_OWN_LICENCE,
    FOLLOW_OWN_VEHICLE,
    FOLLOW_QUOTA_EXCEEDED,
    FOLLOW_REQUEST_NOT_FOUND,
    FOLLOW_REQUEST_NOT_PENDING,
    FOLLOW_VEHICLE_NOT_FOUND,
    INVALID_FILE_NO,
    INVALID_ID_NUMBER,
    INVALID_PLATE_NUMBER,
    INVALID_PLATE_TYPE,
    INVALID_VIN,
    SANDBOX_ONLY,
    SMS_CODE_EXPIRED,
    SMS_CODE_WRONG,
    SMS_PHONE_LOCKED,
    SMS_RESEND_TOO_SOON,
    SMS_UNAVAILABLE,
    ErrorSpec,
)

#: R-SMS-1/2: sending the consent code (60 s apart per phone, a daily lock, the gateway down).
SMS_SEND: tuple[ErrorSpec, ...] = (SMS_RESEND_TOO_SOON, SMS_PHONE_LOCKED, SMS_UNAVAILABLE)

#: A follow becoming active re-checks every quota (R-FOL-3, 4, 6) and the one-follow rule.
ACTIVATION: tuple[ErrorSpec, ...] = (FOLLOW_QUOTA_EXCEEDED, ALREADY_FOLLOWING)

#: A request id the caller may not act on answers exactly like an unknown one.
REQUEST_LOOKUP: tuple[ErrorSpec, ...] = (FOLLOW_REQUEST_NOT_FOUND, FOLLOW_REQUEST_NOT_PENDING)

REQUEST_VEHICLE_FOLLOW_ERRORS: tuple[ErrorSpec, ...] = (
    INVALID_PLATE_NUMBER,
    INVALID_PLATE_TYPE,
    INVALID_VIN,
    FOLLOW_VEHICLE_NOT_FOUND,
    FOLLOW_OWN_VEHICLE,
    FOLLOW_NO_CONSENT_ROUTE,
    *ACTIVATION,
    *SMS_SEND,
)
SUBMIT_SMS_CODE_ERRORS: tuple[ErrorSpec, ...] = (
    *REQUEST_LOOKUP,
    SMS_CODE_WRONG,
    SMS_CODE_EXPIRED,
    *ACTIVATION,
)
APPROVE_ERRORS: tuple[ErrorSpec, ...] = (*REQUEST_LOOKUP, *ACTIVATION)
DECLINE_ERRORS: tuple[ErrorSpec, ...] = REQUEST_LOOKUP
#: Unfollow, revoke, unfollow a licence: another user's follow is 404 like an unknown one.
END_FOLLOW_ERRORS: tuple[ErrorSpec, ...] = (FOLLOW_NOT_FOUND,)
FOLLOW_LICENCE_ERRORS: tuple[ErrorSpec, ...] = (
    INVALID_ID_NUMBER,
    INVALID_FILE_NO,
    FOLLOW_LICENCE_NOT_FOUND,
    FOLLOW_OWN_LICENCE,
    *ACTIVATION,
)
SANDBOX_SMS_ERRORS: tuple[ErrorSpec, ...] = (SANDBOX_ONLY,)
