"""Refunds of duplicate payments (R-PAY-5): when two successful payments meet one decision
(counter cash and online at the same moment), the later one is a ``duplicate`` and gets a
refund ``pending_approval``; a supervisor approves it and the money goes back through the
provider's refund API (a counter payment's at the desk).

``out_request_no`` is fixed when the refund is created, so approving again after a
provider outage retries the same refund request, which the provider applies at most once.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from cqcommon.errors import REFUND_NOT_PENDING, DomainError

from cqpayment.domain.payments import Channel, Payment


class RefundState(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    #: approved, the provider call outstanding (approving again retries it)
    APPROVED = "approved"
    REFUNDED = "refunded"
    FAILED = "failed"


class RefundReason(enum.StrEnum):
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Refund:
    refund_id: str
    payment_id: str
    decision_no: str
    amount_fen: int
    reason: RefundReason
    state: RefundState
    out_request_no: str
    channel: Channel
    created_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    refunded_at: datetime | None = None


def refund_for_duplicate(payment: Payment, *, refund_id: str, now: datetime) -> Refund:
    """The refund a duplicate payment gets, awaiting a supervisor's approval."""
    return Refund(
        refund_id=refund_id,
        payment_id=payment.payment_id,
        decision_no=payment.decision_no,
        amount_fen=payment.amount_fen,
        reason=RefundReason.DUPLICATE,
        state=RefundState.PENDING_APPROVAL,
        out_request_no="RF" + uuid.UUID(refund_id).hex,
        channel=payment.channel,
        created_at=now,
    )


def check_approvable(refund: Refund) -> None:
    """Approving is allowed while pending, and again while the provider call is
    outstanding (``approved``); a refunded or failed refund is done."""
    if refund.state not in (RefundState.PENDING_APPROVAL, RefundState.APPROVED):
        raise DomainError(REFUND_NOT_PENDING, details={"state": refund.state.value})


def approved(refund: Refund, *, by: str, now: datetime) -> Refund:
    """Approved by a supervisor; approving again keeps the first approval."""
    check_approvable(refund)
    if refund.state is RefundState.APPROVED:
        return refund
    return dataclasses.replace(refund, state=RefundState.APPROVED, approved_by=by, approved_at=now)


def refunded(refund: Refund, *, at: datetime) -> Refund:
    return dataclasses.replace(refund, state=RefundState.REFUNDED, refunded_at=at)


def refund_failed(refund: Refund) -> Refund:
    """The provider refused the refund: staff settle it by other means."""
    return dataclasses.replace(refund, state=RefundState.FAILED)
