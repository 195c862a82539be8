"""Settling a payment from what the provider says (R-PAY-3/4/5): the one place a payment
leaves ``pending`` (or a ``failed`` one is found paid after all), used by notifications,
status reads, the pending-payment job, counter payments and new payments that meet an
expired one.

Every settlement runs in one transaction that locks the decision first, then the payment,
the order every writer of a decision's payments keeps, so two settlements of one decision
queue instead of both seeing "no success yet". The outcome:

- paid, no other payment succeeded: ``succeeded`` and ``FinePaid`` through the outbox;
- paid, another already succeeded: ``duplicate`` and a refund ``pending_approval``
  (R-PAY-5);
- closed / expired: a ``pending`` payment becomes ``failed``; a paid one never does.

Repeating a settlement changes nothing (already-settled payments are left alone), so a
notification replayed 15 times makes one state change and one ``FinePaid``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cqpayment.domain.events import FinePaid
from cqpayment.domain.payments import (
    FailureReason,
    Payment,
    PaymentState,
    TradeOutcome,
    settle_failed,
    settle_paid,
    trade_outcome,
)
from cqpayment.domain.provider import ProviderTrade, ProviderUnavailableError, TradeAlreadyPaidError
from cqpayment.domain.refunds import refund_for_duplicate
from cqpayment.ports import UnitOfWork
from cqpayment.service_layer.config import Deps

log = logging.getLogger(__name__)


async def apply_outcome(
    uow: UnitOfWork,
    payment_id: str,
    outcome: TradeOutcome,
    *,
    provider_trade_no: str | None,
    paid_at: datetime | None,
    now: datetime,
    new_refund_id: str,
) -> Payment | None:
    """Settle one payment inside ``uow`` (not committed here); returns the payment as it is
    afterwards, or None when there is no such payment."""
    seen = await uow.payments.get(payment_id)
    if seen is None:
        return None
    # decision first, then the payment: the lock order of every payment writer
    await uow.decisions.lock(seen.decision_no)
    payment = await uow.payments.lock(payment_id)
    if payment is None:
        return None
    changed: Payment | None = None
    if outcome is TradeOutcome.PAID:
        other = await uow.payments.succeeded_of(payment.decision_no)
        changed = settle_paid(
            payment,
            other_succeeded=other is not None and other.payment_id != payment.payment_id,
            provider_trade_no=provider_trade_no,
            paid_at=paid_at or now,
        )
        if changed is not None:
            await uow.payments.save(changed, now=now)
            if changed.state is PaymentState.SUCCEEDED:
                uow.record(FinePaid(changed))
            else:
                await uow.refunds.add(
                    refund_for_duplicate(changed, refund_id=new_refund_id, now=now)
                )
                log.warning(
                    "payment %s of decision %s is a duplicate; refund awaits approval",
                    changed.payment_id,
                    changed.decision_no,
                )
    elif outcome in (TradeOutcome.CLOSED, TradeOutcome.EXPIRED):
        reason = FailureReason.CLOSED if outcome is TradeOutcome.CLOSED else FailureReason.EXPIRED
        changed = settle_failed(payment, reason)
        if changed is not None:
            await uow.payments.save(changed, now=now)
    return changed or payment


async def settle(
    deps: Deps,
    payment_id: str,
    outcome: TradeOutcome,
    *,
    trade: ProviderTrade | None = None,
    provider_trade_no: str | None = None,
    paid_at: datetime | None = None,
) -> Payment | None:
    """``apply_outcome`` in a transaction of its own, committed."""
    if trade is not None:
        provider_trade_no = provider_trade_no or trade.trade_no
        paid_at = paid_at or trade.paid_at
    async with deps.uows() as uow:
        payment = await apply_outcome(
            uow,
            payment_id,
            outcome,
            provider_trade_no=provider_trade_no,
            paid_at=paid_at,
            now=deps.clock.now(),
            new_refund_id=deps.new_id(),
        )
        await uow.commit()
    return payment


async def resolve(deps: Deps, payment: Payment, *, close_if_expired: bool = False) -> Payment:
    """Ask the provider about a payment and settle what it says (R-PAY-4); never creates
    a trade. Raises ``ProviderUnavailableError`` when the provider does not answer.

    ``close_if_expired``: a payment past its expiry whose trade the provider still shows
    open is closed first (a trade must not stay payable at yesterday's amount), and a
    close refused because the trade was paid settles it as paid.
    """
    trade = await deps.provider.query_trade(payment.out_trade_no)
    now = deps.clock.now()
    outcome = trade_outcome(payment, trade, now)
    if outcome is TradeOutcome.WAITING and close_if_expired and payment.expired(now):
        try:
            await deps.provider.close_trade(payment.out_trade_no)
            outcome = TradeOutcome.CLOSED
        except TradeAlreadyPaidError:
            trade = await query_quietly(deps, payment.out_trade_no) or trade
            outcome = TradeOutcome.PAID
    if outcome is TradeOutcome.WAITING:
        return payment
    settled = await settle(deps, payment.payment_id, outcome, trade=trade)
    return settled or payment


async def query_quietly(deps: Deps, out_trade_no: str) -> ProviderTrade | None:
    """The trade for its number and paid time, or None when the provider does not say."""
    try:
        return await deps.provider.query_trade(out_trade_no)
    except ProviderUnavailableError:
        return None
