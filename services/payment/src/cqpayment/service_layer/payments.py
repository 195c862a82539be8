"""Use cases: create an online payment, take a payment at the counter, read a payment
(R-PAY-2..6). Never double-charged (R-PAY-3):

- the idempotency key is claimed first, in its own short transaction, and answers a retry
  with the first response (``service_layer.idempotency``);
- the decision's row is locked while its payments are looked at and one is added, and the
  database allows one ``pending`` and one ``succeeded`` payment per decision anyway;
- the provider is called outside every transaction, and a call whose outcome is unknown
  leaves the payment ``pending`` (resolved later by a query, never by charging again).

An online payment's amount is fixed when it is created (fine + late fee of that Asia/
Shanghai day, R-PAY-2) and its trade closes at the next local midnight. The same payer asking
again while their trade is open gets the same payment (the same trade, no second one);
another payer gets ``PAYMENT_IN_PROGRESS`` until it ends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cqcommon.clock import FixedClock, today_in_shanghai
from cqcommon.errors import (
    ALIPAY_UNAVAILABLE,
    ALREADY_PAID,
    DECISION_DISPUTED,
    DECISION_NOT_FOUND,
    DECISION_NOT_PAYABLE_HERE,
    INVALID_PAYMENT_METHOD,
    PAYMENT_IN_PROGRESS,
    PAYMENT_NOT_FOUND,
    PAYMENT_PROVIDER_REFUSED,
    DomainError,
)
from cqcommon.fees import amount_due

from cqpayment.domain.callers import Caller, require_staff, require_user
from cqpayment.domain.decisions import Decision, parse_decision_no
from cqpayment.domain.events import FinePaid
from cqpayment.domain.idempotency import KeyId, Operation, scope_of, validate_key
from cqpayment.domain.payments import (
    COUNTER_METHODS,
    Channel,
    FailureReason,
    Payment,
    PaymentState,
    TradeOutcome,
    new_out_trade_no,
    next_local_midnight,
    settle_failed,
)
from cqpayment.domain.provider import (
    ProviderRefusedError,
    ProviderUnavailableError,
    TradeAlreadyPaidError,
)
from cqpayment.ports import UnitOfWork
from cqpayment.service_layer.config import Deps
from cqpayment.service_layer.idempotency import (
    Claimed,
    Replay,
    claim_key,
    give_up_quietly,
    release_key,
    unlock_key,
)
from cqpayment.service_layer.settlement import query_quietly, resolve, settle

log = logging.getLogger(__name__)

#: The serialized wire form of a payment: the first response stored with a key and
#: replayed byte for byte (the entrypoint that owns the wire format supplies it).
PaymentEncoder = Callable[[Payment], bytes]

#: Rounds of "an earlier payment is in the way: settle it, then look again".
_ROUNDS = 3


@dataclass(frozen=True)
class CreateResult:
    #: the serialized payment: the first response for the key, replayed unchanged
    response: bytes
    replayed: bool


def _check_payable(decision: Decision | None) -> Decision:
    if decision is None or not decision.party_known:
        raise DomainError(DECISION_NOT_FOUND)
    if not decision.payable_here:
        raise DomainError(
            DECISION_NOT_PAYABLE_HERE, details={"authority_code": decision.authority_code}
        )
    if decision.disputed:
        raise DomainError(DECISION_DISPUTED)
    return decision


def _new_payment(
    deps: Deps,
    decision: Decision,
    *,
    channel: Channel,
    caller: Caller,
) -> Payment:
    """A payment of the decision at today's amount (R-PAY-2), fixed from now on."""
    now = deps.clock.now()
    due = amount_due(decision.fine_fen, decision.decision_date, today_in_shanghai(FixedClock(now)))
    online = channel is Channel.ALIPAY
    return Payment(
        payment_id=deps.new_id(),
        decision_no=decision.decision_no,
        violation_id=decision.violation_id,
        channel=channel,
        state=PaymentState.PENDING if online else PaymentState.SUCCEEDED,
        amount_fen=due.total_fen,
        fine_fen=due.fine_fen,
        late_fee_fen=due.late_fee_fen,
        out_trade_no=new_out_trade_no(now, deps.new_token()),
        provider_trade_no=None,
        payer_user_id=caller.user_id if online else None,
        payer_person_id=(caller.person_id or None) if online else decision.party_person_id,
        staff_id=None if online else caller.staff_id,
        created_at=now,
        expires_at=next_local_midnight(now),
        paid_at=None if online else now,
    )


# -- online payment ---------------------------------------------------------------------
async def create_payment(
    deps: Deps,
    *,
    encode: PaymentEncoder,
    caller: Caller,
    decision_no: str,
    idempotency_key: str,
    request_hash: str,
) -> CreateResult:
    """Create (or carry on with) the caller's payment of a decision; returns the payment
    with the provider's trade number for ``my.tradePay``."""
    user_id = require_user(caller)
    now = deps.clock.now()
    deps.config.check_window(now)
    key = KeyId(scope_of(caller), Operation.CREATE_PAYMENT, validate_key(idempotency_key))
    number = parse_decision_no(decision_no)
    claimed = await claim_key(deps, key, request_hash=request_hash, now=now)
    if isinstance(claimed, Replay):
        return CreateResult(claimed.response, replayed=True)
    try:
        payment = await _payment_for(deps, claimed, caller, number)
    except DomainError:
        await release_key(deps, key)
        raise
    except BaseException:
        await give_up_quietly(deps, key)
        raise
    try:
        trade_no = None
        if payment.state is PaymentState.PENDING and payment.provider_trade_no is None:
            trade_no = await _create_trade(deps, payment, key, buyer_id=user_id)
        return CreateResult(await _complete(deps, key, payment, encode, trade_no), replayed=False)
    except DomainError:
        raise
    except BaseException:
        await give_up_quietly(deps, key)
        raise


def _goes_on(payment: Payment, now: datetime) -> bool:
    """Whether a key's earlier payment is still the answer: not failed, and not a
    pending one past its expiry."""
    if payment.state is PaymentState.FAILED:
        return False
    return not (payment.state is PaymentState.PENDING and payment.expired(now))


async def _payment_for(deps: Deps, claimed: Claimed, caller: Caller, decision_no: str) -> Payment:
    """Step 4: under the decision's lock, the payment this request goes on with."""
    for _ in range(_ROUNDS):
        async with deps.uows() as uow:
            decision = await uow.decisions.lock(decision_no)
            now = deps.clock.now()
            if decision is not None and claimed.payment_id is not None:
                # a retry taking the key over goes on with its payment, unless that one
                # failed or can no longer be paid (then it is settled like any other)
                own = await uow.payments.get(claimed.payment_id)
                if own is not None and _goes_on(own, now):
                    return own
            decision = _check_payable(decision)
            if await uow.payments.succeeded_of(decision_no) is not None:
                raise DomainError(ALREADY_PAID)
            pending = await uow.payments.pending_of(decision_no)
            if pending is None:
                payment = _new_payment(deps, decision, channel=Channel.ALIPAY, caller=caller)
                await uow.payments.add(payment)
                await uow.keys.attach(claimed.key, payment.payment_id)
                await uow.commit()
                return payment
            if not pending.expired(now):
                if pending.channel is Channel.ALIPAY and pending.payer_user_id == caller.user_id:
                    # the same payer again: finish the same trade, never a second one
                    await uow.keys.attach(claimed.key, pending.payment_id)
                    await uow.commit()
                    return pending
                raise DomainError(PAYMENT_IN_PROGRESS)
        # an expired pending payment is in the way: the provider says how it ended
        try:
            await resolve(deps, pending, close_if_expired=True)
        except ProviderUnavailableError:
            raise DomainError(ALIPAY_UNAVAILABLE) from None
    raise DomainError(PAYMENT_IN_PROGRESS)


async def _create_trade(deps: Deps, payment: Payment, key: KeyId, *, buyer_id: str) -> str:
    """Step 5, outside every transaction: the provider's trade for the payment."""
    try:
        return await deps.provider.create_trade(
            out_trade_no=payment.out_trade_no,
            amount_fen=payment.amount_fen,
            subject=f"{deps.config.subject} {payment.decision_no}",
            buyer_id=buyer_id,
            expires_at=payment.expires_at,
        )
    except ProviderRefusedError as exc:
        async with deps.uows() as uow:
            locked = await uow.payments.lock(payment.payment_id)
            failed = settle_failed(locked, FailureReason.PROVIDER_REFUSED) if locked else None
            if failed is not None:
                await uow.payments.save(failed, now=deps.clock.now())
            await uow.keys.release(key)
            await uow.commit()
        log.warning("provider refused trade of payment %s: %s", payment.payment_id, exc.code)
        raise DomainError(PAYMENT_PROVIDER_REFUSED, details={"provider_code": exc.code}) from None
    except ProviderUnavailableError:
        # outcome unknown: the payment stays pending, a retry with this key re-sends the
        # same order number (the provider accepts that while the trade is unpaid)
        await unlock_key(deps, key)
        raise DomainError(ALIPAY_UNAVAILABLE) from None


async def _complete(
    deps: Deps, key: KeyId, payment: Payment, encode: PaymentEncoder, trade_no: str | None
) -> bytes:
    """Step 6, one transaction: the provider's trade number on the payment, and the
    response (the payment as it is now) stored with the key; returns the response."""
    async with deps.uows() as uow:
        if trade_no is not None:
            locked = await uow.payments.lock(payment.payment_id)
            if locked is None:  # pragma: no cover - payments are never deleted
                raise DomainError(PAYMENT_NOT_FOUND)
            if locked.provider_trade_no is None:
                locked = dataclasses.replace(locked, provider_trade_no=trade_no)
                await uow.payments.save(locked, now=deps.clock.now())
            payment = locked
        response = encode(payment)
        await uow.keys.complete(key, response=response, now=deps.clock.now())
        await uow.commit()
    if trade_no is not None and payment.state is PaymentState.FAILED:
        # settled meanwhile (a counter closed it): the trade just made must not stay open
        await _close_quietly(deps, payment)
    return response


async def _close_quietly(deps: Deps, payment: Payment) -> None:
    try:
        await deps.provider.close_trade(payment.out_trade_no)
    except TradeAlreadyPaidError:
        await settle(deps, payment.payment_id, TradeOutcome.PAID)
    except ProviderUnavailableError:
        log.warning("could not close the trade of failed payment %s", payment.payment_id)


# -- counter payment --------------------------------------------------------------------
async def create_counter_payment(
    deps: Deps,
    *,
    encode: PaymentEncoder,
    caller: Caller,
    decision_no: str,
    method: str,
    idempotency_key: str,
    request_hash: str,
) -> CreateResult:
    """Cash or card at a police counter: a ``succeeded`` payment and ``FinePaid`` in one
    transaction. An online payment in progress is closed at the provider first; if it
    turns out paid, no cash is taken (ALREADY_PAID)."""
    require_staff(caller)
    now = deps.clock.now()
    deps.config.check_window(now)
    key = KeyId(scope_of(caller), Operation.COUNTER_PAYMENT, validate_key(idempotency_key))
    channel = COUNTER_METHODS.get(method)
    if channel is None:
        raise DomainError(INVALID_PAYMENT_METHOD, details={"allowed": sorted(COUNTER_METHODS)})
    number = parse_decision_no(decision_no)
    claimed = await claim_key(deps, key, request_hash=request_hash, now=now)
    if isinstance(claimed, Replay):
        return CreateResult(claimed.response, replayed=True)
    try:
        return await _pay_at_counter(deps, claimed, caller, number, channel, encode)
    except DomainError:
        await release_key(deps, key)
        raise
    except BaseException:
        await give_up_quietly(deps, key)
        raise


async def _pay_at_counter(
    deps: Deps,
    claimed: Claimed,
    caller: Caller,
    decision_no: str,
    channel: Channel,
    encode: PaymentEncoder,
) -> CreateResult:
    close_unknown = False
    for _ in range(_ROUNDS):
        async with deps.uows() as uow:
            decision = _check_payable(await uow.decisions.lock(decision_no))
            if await uow.payments.succeeded_of(decision_no) is not None:
                raise DomainError(ALREADY_PAID)
            online = await uow.payments.pending_of(decision_no)
            if online is None or close_unknown:
                payment = _new_payment(deps, decision, channel=channel, caller=caller)
                return CreateResult(
                    await _book_counter(uow, claimed.key, payment, encode, deps), replayed=False
                )
        # an online payment is in progress: close its trade (outside the lock), look again
        try:
            await deps.provider.close_trade(online.out_trade_no)
            await settle(deps, online.payment_id, TradeOutcome.CLOSED)
        except TradeAlreadyPaidError:
            # paid online meanwhile: settle it; the next round answers ALREADY_PAID
            trade = await query_quietly(deps, online.out_trade_no)
            await settle(deps, online.payment_id, TradeOutcome.PAID, trade=trade)
        except ProviderUnavailableError:
            # the rare duplicate this may allow is refunded (R-PAY-5)
            log.warning("could not close online payment %s; taking cash", online.payment_id)
            close_unknown = True
    raise DomainError(PAYMENT_IN_PROGRESS)


async def _book_counter(
    uow: UnitOfWork, key: KeyId, payment: Payment, encode: PaymentEncoder, deps: Deps
) -> bytes:
    """The counter payment, its FinePaid and the key's response, in one transaction."""
    response = encode(payment)
    await uow.payments.add(payment)
    uow.record(FinePaid(payment))
    await uow.keys.attach(key, payment.payment_id)
    await uow.keys.complete(key, response=response, now=deps.clock.now())
    await uow.commit()
    return response


# -- reading a payment ------------------------------------------------------------------
async def get_payment(deps: Deps, *, caller: Caller, payment_id: str) -> Payment:
    """The payment, if the caller may see it (R-PAY-4: another's and an unknown id answer
    PAYMENT_NOT_FOUND alike, one query each). A pending one is resolved with the provider
    at once; if the provider does not answer, it is shown pending as it is."""
    async with deps.uows().reading() as uow:
        payment = await uow.payments.get_for(payment_id, caller)
    if payment is None:
        raise DomainError(PAYMENT_NOT_FOUND)
    if payment.state is PaymentState.PENDING:
        try:
            payment = await resolve(deps, payment)
        except ProviderUnavailableError:
            log.info("provider unavailable; payment %s shown pending", payment.payment_id)
    return payment


__all__ = [
    "CreateResult",
    "PaymentEncoder",
    "create_counter_payment",
    "create_payment",
    "get_payment",
]
