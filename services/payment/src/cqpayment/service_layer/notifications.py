"""Use case: a provider notification (R-PAY-7, R-PAY-3).

A notification changes something only once it passed every check, in this order:
the provider's signature (the adapter's ``verify_notification``), our app id, our merchant
(seller id), an order number we issued, and the amount we asked for. A failing one is
stored with a stable reason and logged at WARNING with that reason and the order number
only (never the payload: it may be forged, and it names a buyer), and answered
``accepted=false``, so the provider retries and staff can count them.

An accepted one is recorded by ``notify_id`` (a replay finds it and changes nothing) and
settles the payment in the same transaction (``service_layer.settlement``): 15 replays,
10 of them at once, make one state change and one ``FinePaid``. Notifications are accepted
inside the maintenance window too (R-PAY-6).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cqpayment.domain.payments import Payment, TradeOutcome
from cqpayment.domain.provider import NotificationRejectedError, ProviderNotification, TradeState
from cqpayment.service_layer.config import Deps
from cqpayment.service_layer.settlement import apply_outcome

log = logging.getLogger(__name__)

APP_ID_MISMATCH = "app_id_mismatch"
SELLER_ID_MISMATCH = "seller_id_mismatch"
UNKNOWN_TRADE = "unknown_trade"
AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True)
class NotificationResult:
    accepted: bool
    rejected_reason: str = ""


def _outcome(state: TradeState) -> TradeOutcome:
    if state.paid:
        return TradeOutcome.PAID
    if state is TradeState.TRADE_CLOSED:
        return TradeOutcome.CLOSED
    return TradeOutcome.WAITING


def _mismatch(n: ProviderNotification, payment: Payment | None, deps: Deps) -> str | None:
    if n.app_id != deps.config.app_id:
        return APP_ID_MISMATCH
    if n.seller_id != deps.config.seller_id:
        return SELLER_ID_MISMATCH
    if payment is None:
        return UNKNOWN_TRADE
    if n.total_amount_fen != payment.amount_fen:
        return AMOUNT_MISMATCH
    return None


async def _reject(deps: Deps, reason: str, out_trade_no: str | None) -> NotificationResult:
    async with deps.uows() as uow:
        await uow.notifications.add_rejected(
            reason=reason, out_trade_no=out_trade_no, now=deps.clock.now()
        )
        await uow.commit()
    log.warning("provider notification rejected: %s (out_trade_no=%s)", reason, out_trade_no)
    return NotificationResult(accepted=False, rejected_reason=reason)


async def record_provider_notification(
    deps: Deps, *, params: Mapping[str, str]
) -> NotificationResult:
    """Verify, record once, settle (R-PAY-7)."""
    try:
        n = deps.provider.verify_notification(params)
    except NotificationRejectedError as exc:
        # the order number as posted, unverified: only for the log line and the count
        return await _reject(deps, exc.reason, (params.get("out_trade_no") or None))
    async with deps.uows().reading() as uow:
        payment = await uow.payments.by_out_trade_no(n.out_trade_no)
    reason = _mismatch(n, payment, deps)
    if reason is not None or payment is None:
        return await _reject(deps, reason or UNKNOWN_TRADE, n.out_trade_no)
    now = deps.clock.now()
    async with deps.uows() as uow:
        first = await uow.notifications.add_accepted(
            notify_id=n.notify_id, out_trade_no=n.out_trade_no, trade_state=n.state.value, now=now
        )
        outcome = _outcome(n.state)
        if first and outcome is not TradeOutcome.WAITING:
            await apply_outcome(
                uow,
                payment.payment_id,
                outcome,
                provider_trade_no=n.trade_no or None,
                paid_at=n.paid_at,
                now=now,
                new_refund_id=deps.new_id(),
            )
        await uow.commit()
    return NotificationResult(accepted=True)
