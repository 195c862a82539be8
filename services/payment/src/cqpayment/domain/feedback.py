"""Feedback on a payment (R-PAY-9): a user says "paid but not cleared"; staff see it with
the payment's state and the provider's status next to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.text import check_text

MAX_TEXT_CHARS = 500

#: ``provider_status`` when the provider did not answer in time
PROVIDER_STATUS_UNKNOWN = "UNKNOWN"
#: ``provider_status`` of a counter payment (no provider involved)
PROVIDER_STATUS_NONE = "NONE"
#: ``provider_status`` when the provider never created the trade
PROVIDER_STATUS_NOT_FOUND = "NOT_FOUND"


def validate_text(raw: str) -> str:
    """1..500 characters once surrounding whitespace is stripped; newlines allowed."""
    check_text(raw, field="text", allow_newlines=True)
    text = raw.strip()
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise DomainError(
            VALIDATION_FAILED, details={"field": "text", "min": 1, "max": MAX_TEXT_CHARS}
        )
    return text


@dataclass(frozen=True)
class Feedback:
    feedback_id: str
    payment_id: str
    user_id: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class FeedbackEntry:
    """One line of the staff list: the feedback with its payment."""

    feedback: Feedback
    decision_no: str
    payment_state: str
    out_trade_no: str
    channel: str
    provider_status: str = PROVIDER_STATUS_UNKNOWN
