"""The recording SMS adapter (R-SMS-3): keeps what would have been sent, sends nothing.

Tests and the sandbox use it instead of a real gateway. Messages go to one capped Redis
list (newest first, the last ``max_kept``, the whole list expiring ``ttl_s`` after the last
message), so every replica of every sending service (follow's consent codes, payment's overdue
notices) records into the same outbox and staff read it through the follow service's
sandbox-only ``ListSandboxSms`` RPC (``recent``). The list holds the codes in clear: that is
the one place they may be (R-SMS-3), which is why the outbox is read in sandbox mode only
and kept for a limited time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

import redis.asyncio as aioredis

from cqcommon.clock import Clock, SystemClock
from cqcommon.sms import SentSms

DEFAULT_OUTBOX_KEY = "fsms:outbox"
DEFAULT_MAX_KEPT = 1000
DEFAULT_TTL_S = 7 * 24 * 3600


class RecordingSmsSender:
    """``SmsSender`` that records into a Redis list; ``recent`` reads it back."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock: Clock | None = None,
        key: str = DEFAULT_OUTBOX_KEY,
        max_kept: int = DEFAULT_MAX_KEPT,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        if max_kept < 1 or ttl_s < 1:
            raise ValueError("max_kept and ttl_s must be >= 1")
        self._redis = redis
        self._clock = clock or SystemClock()
        self._key = key
        self.max_kept = max_kept
        self._ttl_s = ttl_s

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        """Record the message; its id (``rec-`` and 32 hex digits)."""
        message_id = f"rec-{uuid.uuid4().hex}"
        entry = json.dumps(
            {
                "id": message_id,
                "phone": phone,
                "template_code": template_code,
                "params": dict(params),
                "sent_at": self._clock.now().isoformat(),
            },
            ensure_ascii=False,
        )
        # One MULTI: the push, the cap and the TTL land together.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self._key, entry)
            pipe.ltrim(self._key, 0, self.max_kept - 1)
            pipe.expire(self._key, self._ttl_s)
            await pipe.execute()
        return message_id

    async def recent(self, phone: str | None, limit: int) -> list[SentSms]:
        """The newest ``limit`` (1..max_kept) recorded messages, newest first; only those
        to ``phone`` when it is given (``None`` or empty: every phone)."""
        limit = max(1, min(limit, self.max_kept))
        # The list is capped at max_kept, so reading it whole is bounded.
        raw = await self._redis.lrange(self._key, 0, self.max_kept - 1)
        found: list[SentSms] = []
        for item in raw:
            message = _decode(item)
            if message is None or (phone and message.phone != phone):
                continue
            found.append(message)
            if len(found) >= limit:
                break
        return found


def _decode(item: bytes | str) -> SentSms | None:
    try:
        data = json.loads(item)
        return SentSms(
            message_id=str(data["id"]),
            phone=str(data["phone"]),
            template_code=str(data["template_code"]),
            params={str(k): str(v) for k, v in dict(data["params"]).items()},
            sent_at=datetime.fromisoformat(str(data["sent_at"])),
        )
    except (ValueError, KeyError, TypeError):
        # A foreign or damaged entry must not hide the rest of the outbox.
        return None
