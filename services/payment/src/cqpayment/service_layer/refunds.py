"""Use cases: list refunds and approve one (R-PAY-5).

Approval is committed before the provider is called (outside every transaction), so a
provider outage leaves the refund ``approved`` and answers ALIPAY_UNAVAILABLE; approving
again retries with the same ``out_request_no``, which the provider refunds at most once.
When the provider confirms, the refund becomes ``refunded``, the payment ``refunded`` and
``PaymentRefunded`` is recorded, in one transaction. A counter payment's money is handed
back at the desk, so its refund is done at once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cqcommon.errors import ALIPAY_UNAVAILABLE, REFUND_NOT_FOUND, VALIDATION_FAILED, DomainError

from cqpayment.domain.callers import Caller, require_staff, require_supervisor
from cqpayment.domain.events import PaymentRefunded
from cqpayment.domain.payments import settle_refunded
from cqpayment.domain.provider import ProviderRefusedError, ProviderUnavailableError
from cqpayment.domain.refunds import (
    Refund,
    RefundState,
    approved,
    refund_failed,
    refunded,
)
from cqpayment.service_layer.config import Deps

log = logging.getLogger(__name__)

MAX_LISTED = 500
REFUND_REASON_ZH = "重复缴款退款"


async def list_refunds(deps: Deps, *, caller: Caller, status: str) -> list[Refund]:
    """Staff: refunds, optionally of one state, oldest first."""
    require_staff(caller)
    if status and status not in {s.value for s in RefundState}:
        raise DomainError(
            VALIDATION_FAILED,
            details={"field": "status", "allowed": [s.value for s in RefundState]},
        )
    async with deps.uows().reading() as uow:
        return await uow.refunds.list(state=status or None, limit=MAX_LISTED)


async def approve_refund(deps: Deps, *, caller: Caller, refund_id: str) -> Refund:
    """Supervisor: approve, then refund through the provider (or at the desk)."""
    supervisor = require_supervisor(caller)
    async with deps.uows() as uow:
        refund = await uow.refunds.lock(refund_id)
        if refund is None:
            raise DomainError(REFUND_NOT_FOUND)
        refund = approved(refund, by=supervisor, now=deps.clock.now())
        await uow.refunds.save(refund)
        payment = await uow.payments.get(refund.payment_id)
        await uow.commit()
    if payment is None:  # pragma: no cover - the foreign key says it exists
        raise DomainError(REFUND_NOT_FOUND)
    refunded_at = deps.clock.now()
    if not refund.channel.at_counter:
        try:
            answer = await deps.provider.refund(
                out_trade_no=payment.out_trade_no,
                amount_fen=refund.amount_fen,
                out_request_no=refund.out_request_no,
                reason=REFUND_REASON_ZH,
            )
        except ProviderUnavailableError:
            raise DomainError(ALIPAY_UNAVAILABLE, details={"refund_state": "approved"}) from None
        except ProviderRefusedError as exc:
            log.warning("provider refused refund %s: %s", refund.refund_id, exc.code)
            return await _finish(deps, refund.refund_id, failed=True)
        refunded_at = answer.refunded_at or refunded_at
    return await _finish(deps, refund.refund_id, failed=False, refunded_at=refunded_at)


async def _finish(
    deps: Deps, refund_id: str, *, failed: bool, refunded_at: datetime | None = None
) -> Refund:
    """Record the provider's answer: refunded (with the payment and PaymentRefunded) or
    failed. A refund finished meanwhile by a concurrent approval is left as it is."""
    async with deps.uows() as uow:
        seen = await uow.refunds.get(refund_id)
        payment = await uow.payments.get(seen.payment_id) if seen is not None else None
        if seen is None or payment is None:  # pragma: no cover - never deleted
            raise DomainError(REFUND_NOT_FOUND)
        # decision, payment, refund: the lock order of every payment writer
        await uow.decisions.lock(payment.decision_no)
        payment = await uow.payments.lock(payment.payment_id)
        refund = await uow.refunds.lock(refund_id)
        if refund is None or payment is None:  # pragma: no cover
            raise DomainError(REFUND_NOT_FOUND)
        if refund.state is not RefundState.APPROVED:
            return refund
        if failed:
            refund = refund_failed(refund)
            await uow.refunds.save(refund)
        else:
            refund = refunded(refund, at=refunded_at or deps.clock.now())
            await uow.refunds.save(refund)
            back = settle_refunded(payment)
            if back is not None:
                await uow.payments.save(back, now=deps.clock.now())
                payment = back
            uow.record(PaymentRefunded(refund, payment))
        await uow.commit()
    return refund
