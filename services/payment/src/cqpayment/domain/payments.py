"""Payments and their states (R-PAY-2..5), as pure rules.

A payment is created ``pending`` with its amount fixed that moment (fine + late fee of
that Asia/Shanghai day, R-PAY-2) and an expiry at the next local midnight: the provider's
trade closes then, so a payment started at 23:59 cannot be paid at yesterday's amount.
From ``pending`` it becomes ``succeeded`` (the money arrived), ``duplicate`` (it arrived
but another payment of the decision had already succeeded: R-PAY-5, refunded after a
supervisor approves), or ``failed`` (closed, expired, refused by the provider).

Money is the truth: a ``failed`` payment the provider later reports paid is settled like a
pending one (it becomes ``succeeded`` or ``duplicate``); nothing ever goes the other way
(a paid payment never becomes failed because a trade was closed afterwards).

Order numbers (``out_trade_no``) are random (the local date and 24 hex digits), never
derived from personal data, and unique (the database enforces it).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cqcommon.clock import SHANGHAI

from cqpayment.domain.callers import Caller
from cqpayment.domain.provider import ProviderTrade, TradeState


class PaymentState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    REFUNDED = "refunded"


#: States in which the money arrived (settled; a later "paid" changes nothing).
SETTLED_PAID = frozenset({PaymentState.SUCCEEDED, PaymentState.DUPLICATE, PaymentState.REFUNDED})


class Channel(enum.StrEnum):
    ALIPAY = "alipay"
    COUNTER_CASH = "counter_cash"
    COUNTER_CARD = "counter_card"

    @property
    def at_counter(self) -> bool:
        return self is not Channel.ALIPAY


#: A counter payment's ``method`` -> its channel.
COUNTER_METHODS = {"cash": Channel.COUNTER_CASH, "card": Channel.COUNTER_CARD}


class FailureReason(enum.StrEnum):
    CLOSED = "closed"  # the provider closed the trade unpaid
    EXPIRED = "expired"  # past its expiry and the provider never had / no longer has it
    PROVIDER_REFUSED = "provider_refused"  # the provider refused to create the trade


@dataclass(frozen=True)
class Payment:
    payment_id: str
    decision_no: str
    violation_id: str
    channel: Channel
    state: PaymentState
    amount_fen: int
    fine_fen: int
    late_fee_fen: int
    out_trade_no: str
    provider_trade_no: str | None
    payer_user_id: str | None
    payer_person_id: str | None
    staff_id: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    failure_reason: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def visible_to(self, caller: Caller) -> bool:
        """R-PAY-4/8/9: the payer user, the decision's party for a counter payment, staff.
        (The PostgreSQL adapter asks the same in its WHERE clause.)"""
        if caller.is_staff:
            return True
        if caller.user_id and self.payer_user_id == caller.user_id:
            return True
        return (
            self.channel.at_counter
            and bool(caller.person_id)
            and self.payer_person_id == caller.person_id
        )


def next_local_midnight(now: datetime) -> datetime:
    """The next Asia/Shanghai midnight strictly after ``now`` (when the day's amount ends)."""
    local = now.astimezone(SHANGHAI)
    return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=SHANGHAI)


def new_out_trade_no(now: datetime, token_hex: str) -> str:
    """``20261120`` + 24 random hex digits: our order number at the provider."""
    if len(token_hex) != 24:
        raise ValueError("out_trade_no needs 24 hex digits of randomness")
    return now.astimezone(SHANGHAI).strftime("%Y%m%d") + token_hex


def settle_paid(
    payment: Payment,
    *,
    other_succeeded: bool,
    provider_trade_no: str | None,
    paid_at: datetime,
) -> Payment | None:
    """The payment once its money arrived, or None when that is already known.

    ``other_succeeded``: another payment of the decision already succeeded, so this one is
    a ``duplicate`` to refund (R-PAY-5). A ``failed`` payment is settled too (money is the
    truth)."""
    if payment.state in SETTLED_PAID:
        return None
    return dataclasses.replace(
        payment,
        state=PaymentState.DUPLICATE if other_succeeded else PaymentState.SUCCEEDED,
        paid_at=paid_at,
        provider_trade_no=payment.provider_trade_no or provider_trade_no or None,
        failure_reason=None,
    )


def settle_failed(payment: Payment, reason: FailureReason) -> Payment | None:
    """A ``pending`` payment that can no longer be paid; anything else is left alone."""
    if payment.state is not PaymentState.PENDING:
        return None
    return dataclasses.replace(payment, state=PaymentState.FAILED, failure_reason=reason.value)


def settle_refunded(payment: Payment) -> Payment | None:
    """A duplicate payment whose money went back (R-PAY-5); anything else is left alone."""
    if payment.state is not PaymentState.DUPLICATE:
        return None
    return dataclasses.replace(payment, state=PaymentState.REFUNDED)


class TradeOutcome(enum.Enum):
    PAID = "paid"
    CLOSED = "closed"
    EXPIRED = "expired"
    WAITING = "waiting"


def trade_outcome(payment: Payment, trade: ProviderTrade | None, now: datetime) -> TradeOutcome:
    """What the provider's view of a trade means for the payment (R-PAY-4).

    None (the provider never created the trade) means nothing until the payment expired:
    before that, the create call may still be on its way."""
    if trade is None:
        return TradeOutcome.EXPIRED if payment.expired(now) else TradeOutcome.WAITING
    if trade.state.paid:
        return TradeOutcome.PAID
    if trade.state is TradeState.TRADE_CLOSED:
        return TradeOutcome.CLOSED
    return TradeOutcome.WAITING
