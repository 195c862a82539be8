"""SMS consent codes and the SMS gateway, in the domain's words (R-SMS-1..3).

A follow request to a vehicle whose owner is not on the platform sends a 6-digit code to
the owner's phone on record; the friend reads it out and the requester enters it. The
rules, with their settings: a code lives ``SMS_CODE_TTL_S`` (5 min) and is used once; one
phone gets at most one SMS per ``SMS_RESEND_INTERVAL_S`` (60 s); ``SMS_MAX_WRONG_ENTRIES``
(5) wrong entries void the code; more than ``SMS_DAILY_LIMIT`` (10) sends to one phone in a
day lock it for the rest of that day (Asia/Shanghai). Codes are stored only as an HMAC and
never reach logs, traces or responses (the sandbox outbox is the one exception, R-SMS-3).

Sending is shared with payment and lives in ``cqcommon.sms`` (a pure module, so this one
stays pure): ``SmsUnavailableError`` and ``SentSms`` are re-exported from there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cqcommon.sms import SentSms, SmsUnavailableError

__all__ = [
    "CODE_DIGITS",
    "CODE_PARAM",
    "CodeCheck",
    "CodeCheckResult",
    "SentSms",
    "SmsError",
    "SmsPhoneLockedError",
    "SmsResendTooSoonError",
    "SmsUnavailableError",
]

#: The template parameter that carries the code.
CODE_PARAM = "code"
CODE_DIGITS = 6


class CodeCheck(enum.Enum):
    """The answer to an entered code."""

    OK = "ok"  # right, and now used up
    WRONG = "wrong"  # wrong; the code stands (attempts_left > 0)
    VOID = "void"  # wrong once too often: the code is gone
    EXPIRED = "expired"  # no live code for this request (expired, used or never sent)


@dataclass(frozen=True, slots=True)
class CodeCheckResult:
    outcome: CodeCheck
    attempts_left: int = 0


class SmsError(Exception):
    """Base of the code store's refusals the use cases turn into error codes (the gateway's
    ``SmsUnavailableError`` is the shared library's and not one of these)."""


class SmsResendTooSoonError(SmsError):
    """R-SMS-1: this phone got an SMS less than the resend interval ago."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class SmsPhoneLockedError(SmsError):
    """R-SMS-2: this phone is locked for the rest of the day (Asia/Shanghai)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"locked for {retry_after_s}s")
        self.retry_after_s = retry_after_s
