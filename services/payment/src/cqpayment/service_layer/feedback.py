"""Use cases: a user files feedback on a payment; staff list it with the provider's view
(R-PAY-9).

Filing sees payments exactly as reading them does (R-PAY-4: another's and an unknown id
answer PAYMENT_NOT_FOUND alike), and a payment takes at most ``PAYMENT_FEEDBACK_MAX``
entries (counted under the payment's lock, so racing requests cannot pass it). The staff
list asks the provider about every listed online payment concurrently, each call bounded
by the provider deadline: a trade it does not answer for shows ``UNKNOWN``, never an error.
"""

from __future__ import annotations

import asyncio
import dataclasses

from cqcommon.errors import FEEDBACK_LIMIT_REACHED, PAYMENT_NOT_FOUND, DomainError

from cqpayment.domain.callers import Caller, require_staff, require_user
from cqpayment.domain.feedback import (
    PROVIDER_STATUS_NONE,
    PROVIDER_STATUS_NOT_FOUND,
    PROVIDER_STATUS_UNKNOWN,
    Feedback,
    FeedbackEntry,
    validate_text,
)
from cqpayment.domain.payments import Channel
from cqpayment.service_layer.config import Deps

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


async def file_feedback(deps: Deps, *, caller: Caller, payment_id: str, text: str) -> Feedback:
    user_id = require_user(caller)
    body = validate_text(text)
    async with deps.uows() as uow:
        payment = await uow.payments.get_for(payment_id, caller)
        if payment is None:
            raise DomainError(PAYMENT_NOT_FOUND)
        await uow.payments.lock(payment.payment_id)  # serialises the count below
        if await uow.feedback.count_for(payment.payment_id) >= deps.config.feedback_max:
            raise DomainError(FEEDBACK_LIMIT_REACHED, details={"max": deps.config.feedback_max})
        feedback = Feedback(
            feedback_id=deps.new_id(),
            payment_id=payment.payment_id,
            user_id=user_id,
            text=body,
            created_at=deps.clock.now(),
        )
        await uow.feedback.add(feedback)
        await uow.commit()
    return feedback


async def _provider_status(deps: Deps, out_trade_no: str) -> str:
    try:
        trade = await asyncio.wait_for(
            deps.provider.query_trade(out_trade_no), timeout=deps.config.provider_timeout_s
        )
    except Exception:  # any failure of one lookup shows UNKNOWN, never fails the list
        return PROVIDER_STATUS_UNKNOWN
    return PROVIDER_STATUS_NOT_FOUND if trade is None else trade.state.value


async def list_feedback(deps: Deps, *, caller: Caller, limit: int) -> list[FeedbackEntry]:
    """Staff: newest first, each with the payment's state and the provider's status."""
    require_staff(caller)
    size = DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
    async with deps.uows().reading() as uow:
        entries = await uow.feedback.newest(limit=size)
    online = sorted({e.out_trade_no for e in entries if e.channel == Channel.ALIPAY.value})
    answers = await asyncio.gather(*(_provider_status(deps, no) for no in online))
    status = dict(zip(online, answers, strict=True))
    return [
        dataclasses.replace(e, provider_status=status.get(e.out_trade_no, PROVIDER_STATUS_NONE))
        for e in entries
    ]
