"""Idempotency keys (R-PAY-3), after Stripe's keys and the IETF Idempotency-Key draft.

A client sends a key with every payment creation; the key is scoped to the caller
(``user:<alipay_user_id>`` or ``staff:<staff_id>``) and to the operation, and stored with
a fingerprint of the request (``request_hash``: method, path and canonical body, made by
the gateway) and, once done, the first response. Then, for the same key:

- the same request again replays the stored response, byte for byte;
- another request (another hash) is refused ``IDEMPOTENCY_KEY_REUSED`` (422);
- while the first is still running (locked less than the lock timeout ago), a retry is
  refused ``IDEMPOTENCY_KEY_IN_USE`` (409);
- a key whose request crashed (lock older than the timeout) or gave up without an outcome
  (unlocked: the provider did not answer) is taken over by the retry, which carries on
  with the payment the key already names, never a second one.

Keys are kept at least 48 h (``IDEMPOTENCY_KEY_RETENTION_H``), then reaped by a job.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cqcommon.errors import (
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_INVALID,
    IDEMPOTENCY_KEY_REQUIRED,
    IDEMPOTENCY_KEY_REUSED,
    DomainError,
)

from cqpayment.domain.callers import Caller

MAX_KEY_CHARS = 255
#: visible ASCII: ``!`` to ``~`` (no space, no control character, nothing beyond ASCII)
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


class Operation(enum.StrEnum):
    CREATE_PAYMENT = "create_payment"
    COUNTER_PAYMENT = "counter_payment"


class KeyState(enum.StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


def validate_key(raw: str) -> str:
    """The key as sent, if it is 1..255 visible ASCII characters."""
    if raw == "":
        raise DomainError(IDEMPOTENCY_KEY_REQUIRED)
    if not _KEY_RE.fullmatch(raw):
        raise DomainError(IDEMPOTENCY_KEY_INVALID, details={"max_length": MAX_KEY_CHARS})
    return raw


def scope_of(caller: Caller) -> str:
    """Keys are scoped per caller: two users may use the same key independently."""
    if caller.is_staff:
        return f"staff:{caller.staff_id}"
    return f"user:{caller.user_id}"


@dataclass(frozen=True)
class KeyId:
    scope: str
    operation: Operation
    key: str


@dataclass(frozen=True)
class StoredKey:
    id: KeyId
    request_hash: str
    state: KeyState
    payment_id: str | None
    response: bytes | None
    locked_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


class Claim(enum.Enum):
    """What a request may do with a key it presented."""

    NEW = "new"  # first use: carry on
    REPLAY = "replay"  # completed with the same request: answer the stored response
    TAKE_OVER = "take_over"  # the earlier attempt crashed or gave up: carry on with it


def judge_claim(
    stored: StoredKey, *, request_hash: str, now: datetime, lock_timeout: timedelta
) -> Claim:
    """A key that already exists, presented again (R-PAY-3)."""
    if stored.request_hash != request_hash:
        raise DomainError(IDEMPOTENCY_KEY_REUSED)
    if stored.state is KeyState.COMPLETED:
        return Claim.REPLAY
    if stored.locked_at is not None and now - stored.locked_at < lock_timeout:
        raise DomainError(IDEMPOTENCY_KEY_IN_USE)
    return Claim.TAKE_OVER
