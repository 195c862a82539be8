"""The idempotency-key steps every payment creation shares (R-PAY-3): claim the key in a
short transaction of its own, then, once the request is decided, complete it with the first
response, give it up without an outcome (a retry takes over) or release it (nothing was
done: the client may send the request again)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from cqpayment.domain.idempotency import Claim, KeyId, judge_claim
from cqpayment.service_layer.config import Deps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A key this request holds: new, or taken over with the payment it already names."""

    key: KeyId
    payment_id: str | None


@dataclass(frozen=True)
class Replay:
    """The key completed earlier with the same request: its stored first response."""

    response: bytes


async def claim_key(
    deps: Deps, key: KeyId, *, request_hash: str, now: datetime
) -> Claimed | Replay:
    """Insert the key locked, or judge the stored one (raises REUSED / IN_USE)."""
    async with deps.uows() as uow:
        stored = await uow.keys.claim(key, request_hash=request_hash, now=now)
        if stored is None:
            await uow.commit()
            return Claimed(key, None)
        claim = judge_claim(
            stored, request_hash=request_hash, now=now, lock_timeout=deps.config.lock_timeout
        )
        if claim is Claim.REPLAY:
            assert stored.response is not None  # the database's check says so for completed
            return Replay(stored.response)
        await uow.keys.lock_again(key, now=now)
        await uow.commit()
        log.info("idempotency key taken over (%s)", key.operation.value)
        return Claimed(key, stored.payment_id)


async def release_key(deps: Deps, key: KeyId) -> None:
    """Forget the key: nothing happened, so the same request may be sent again."""
    async with deps.uows() as uow:
        await uow.keys.release(key)
        await uow.commit()


async def unlock_key(deps: Deps, key: KeyId) -> None:
    """Keep the key (and its payment) but unlocked: the outcome is unknown, a retry with
    the same key takes over and carries on with the same payment."""
    async with deps.uows() as uow:
        await uow.keys.unlock(key)
        await uow.commit()


async def give_up_quietly(deps: Deps, key: KeyId) -> None:
    """After an unexpected failure: unlock if possible (best effort; the lock timeout
    frees the key otherwise)."""
    try:
        await unlock_key(deps, key)
    except Exception:
        log.warning("could not unlock an idempotency key after a failure", exc_info=True)
