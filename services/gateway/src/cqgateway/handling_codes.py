"""Which error codes the handling routes answer (their ``openapi_extra=error_codes(...)``).

The codes themselves live in the one table, ``cqcommon.errors`` (sections "adjudication:
eligibility reasons", "… face verification", "… handlings, points and decisions"); this
module only groups them per route, so /openapi.json names every code a route can answer
and a client can tell each refusal reason apart.
"""

from __future__ import annotations

from cqcommon.errors import (
    AB_CLASS_POINTS_COUNTER_ONLY,
    ALREADY_DECIDED,
    ALREADY_HANDLED,
    ALREADY_PAID,
    DISPUTE_NOT_ALLOWED,
    DISPUTED_COUNTER_ONLY,
    ELIGIBILITY_NOT_AVAILABLE,
    FACE_CERTIFY_ID_INVALID,
    FACE_PROVIDER_ANSWER_UNTRUSTED,
    FACE_PROVIDER_REFUSED,
    FACE_PROVIDER_UNAVAILABLE,
    FINE_OVER_ONLINE_LIMIT,
    GENERAL_PROCEDURE_COUNTER_ONLY,
    HANDLING_IDENTITY_UNAVAILABLE,
    HANDLING_NOT_FOUND,
    HANDLING_OWNER_STEP_FIRST,
    HANDLING_RELATIONS_UNAVAILABLE,
    HANDLING_STEP_UNKNOWN,
    INVALID_CURSOR,
    INVALID_ID_NUMBER,
    LICENCE_NOT_FOUND,
    LICENCE_NOT_VALID_COUNTER_ONLY,
    NO_LICENCE,
    NOT_FOUND,
    NOT_RELATED_TO_VEHICLE,
    ON_SITE_NOT_ONLINE,
    POINTS_BUYING_LICENCE_LIMIT,
    POINTS_BUYING_VEHICLE_LIMIT,
    POINTS_LIMIT_EXCEEDED,
    POINTS_RECENTLY_CHANGED,
    VERIFICATION_EXPIRED,
    VERIFICATION_FAILED,
    VERIFICATION_NOT_FOUND,
    VERIFICATION_PENDING,
    VERIFICATION_USED,
    VIOLATION_NOT_FOUND,
    ErrorSpec,
)

#: R-ADJ-1..4, 6, 9, R-X-2: every rule that can refuse an online handling (403), and the
#: state conflicts (409: already handled, decided, paid), in the engine's order.
ELIGIBILITY_REASONS: tuple[ErrorSpec, ...] = (
    ALREADY_HANDLED,
    ALREADY_PAID,
    ALREADY_DECIDED,
    DISPUTED_COUNTER_ONLY,
    ON_SITE_NOT_ONLINE,
    GENERAL_PROCEDURE_COUNTER_ONLY,
    FINE_OVER_ONLINE_LIMIT,
    NO_LICENCE,
    LICENCE_NOT_VALID_COUNTER_ONLY,
    NOT_RELATED_TO_VEHICLE,
    AB_CLASS_POINTS_COUNTER_ONLY,
    POINTS_LIMIT_EXCEEDED,
    POINTS_RECENTLY_CHANGED,
    POINTS_BUYING_VEHICLE_LIMIT,
    POINTS_BUYING_LICENCE_LIMIT,
)

#: What the start of a handling answers besides a refusal: eligibility or the caller's
#: relations and identity could not be established right now (503).
START_UNAVAILABLE: tuple[ErrorSpec, ...] = (
    ELIGIBILITY_NOT_AVAILABLE,
    HANDLING_RELATIONS_UNAVAILABLE,
    HANDLING_IDENTITY_UNAVAILABLE,
)

#: R-ADJ-8: the face adapter's answers (a provider down or refusing, a verification it
#: does not know, an answer that fails its signature check).
FACE_PROVIDER: tuple[ErrorSpec, ...] = (
    FACE_CERTIFY_ID_INVALID,
    FACE_PROVIDER_REFUSED,
    FACE_PROVIDER_UNAVAILABLE,
    FACE_PROVIDER_ANSWER_UNTRUSTED,
)

#: R-ADJ-8: a step's verification not usable (yet, any more, at all).
VERIFICATION_STATE: tuple[ErrorSpec, ...] = (
    VERIFICATION_NOT_FOUND,
    VERIFICATION_PENDING,
    VERIFICATION_FAILED,
    VERIFICATION_EXPIRED,
    VERIFICATION_USED,
)

#: A handling id the caller does not have (unknown or another user's: the same 404).
HANDLING_404: tuple[ErrorSpec, ...] = (NOT_FOUND, HANDLING_NOT_FOUND)

START_ERRORS: tuple[ErrorSpec, ...] = (
    NOT_FOUND,
    VIOLATION_NOT_FOUND,
    *ELIGIBILITY_REASONS,
    *START_UNAVAILABLE,
    *FACE_PROVIDER,
)
COMPLETE_ERRORS: tuple[ErrorSpec, ...] = (
    *HANDLING_404,
    HANDLING_STEP_UNKNOWN,
    HANDLING_OWNER_STEP_FIRST,
    *VERIFICATION_STATE,
    *FACE_PROVIDER,
)
SUBMIT_ERRORS: tuple[ErrorSpec, ...] = (
    *HANDLING_404,
    *ELIGIBILITY_REASONS,
    ELIGIBILITY_NOT_AVAILABLE,
    *VERIFICATION_STATE,
)
GET_ERRORS: tuple[ErrorSpec, ...] = HANDLING_404

#: The counter's in-person handling: online limits of fine and licence class lifted; the
#: points limit, a valid licence, an open dispute and the state conflicts still refuse.
COUNTER_HANDLE_ERRORS: tuple[ErrorSpec, ...] = (
    INVALID_ID_NUMBER,
    NOT_FOUND,
    VIOLATION_NOT_FOUND,
    LICENCE_NOT_FOUND,
    ALREADY_HANDLED,
    ALREADY_DECIDED,
    ALREADY_PAID,
    DISPUTED_COUNTER_ONLY,
    POINTS_LIMIT_EXCEEDED,
    LICENCE_NOT_VALID_COUNTER_ONLY,
    HANDLING_IDENTITY_UNAVAILABLE,
    VERIFICATION_FAILED,
)
DISPUTE_ERRORS: tuple[ErrorSpec, ...] = (NOT_FOUND, VIOLATION_NOT_FOUND, DISPUTE_NOT_ALLOWED)
ALERT_ERRORS: tuple[ErrorSpec, ...] = (INVALID_CURSOR,)
