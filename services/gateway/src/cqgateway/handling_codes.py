"""Which error codes the handling routes answer (their ``openapi_extra=error_codes(...)``).

The codes themselves live in the one table, ``cqcommon.errors`` (sections "adjudication:
eligibility reasons", "… face verification", "… handlings, points and decisions"); this
module only groups them per route, so /openapi.json names every code a route can answer
and a client can tell each refusal reason apart.
"""

from __future__ import annotations

from cqcommon.errors import (
    INVALID_CURSOR,
    INVALID_ID_NUMBER,
    LICENCE_NOT_FOUND,
    NOT_FOUND,
    VIOLATION_NOT_FOUND,
    ErrorSpec,
)

#: R-ADJ-1..4, 6, 9, R-X-2: every rule that can refuse an online handling (403), and the
#: state conflicts (409: already handled, decided, paid).
ELIGIBILITY_REASONS: tuple[ErrorSpec, ...] = ()

#: R-ADJ-8: the face adapter's answers (a provider down, a verification unknown to it…).
FACE_VERIFICATION: tuple[ErrorSpec, ...] = ()

#: R-ADJ-5, 7: the handling's own state (steps not passed, expired, already submitted…).
HANDLING_STATE: tuple[ErrorSpec, ...] = ()

START_ERRORS: tuple[ErrorSpec, ...] = (
    NOT_FOUND,
    VIOLATION_NOT_FOUND,
    *ELIGIBILITY_REASONS,
    *FACE_VERIFICATION,
)
COMPLETE_ERRORS: tuple[ErrorSpec, ...] = (NOT_FOUND, *FACE_VERIFICATION, *HANDLING_STATE)
SUBMIT_ERRORS: tuple[ErrorSpec, ...] = (NOT_FOUND, *ELIGIBILITY_REASONS, *HANDLING_STATE)
GET_ERRORS: tuple[ErrorSpec, ...] = (NOT_FOUND,)

#: The counter's in-person handling: online limits lifted, the points limit kept.
COUNTER_HANDLE_ERRORS: tuple[ErrorSpec, ...] = (
    INVALID_ID_NUMBER,
    NOT_FOUND,
    VIOLATION_NOT_FOUND,
    LICENCE_NOT_FOUND,
    *HANDLING_STATE,
)
DISPUTE_ERRORS: tuple[ErrorSpec, ...] = (NOT_FOUND, VIOLATION_NOT_FOUND)
ALERT_ERRORS: tuple[ErrorSpec, ...] = (INVALID_CURSOR,)
