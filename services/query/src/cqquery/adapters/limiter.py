"""``ports.LookupLimiter`` on the shared Redis sliding-window limiter (R-Q-1).

Redis errors become ``PortUnavailableError`` here, so the use case can refuse the lookup
(fail closed) without knowing what the limiter runs on.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from cqcommon.ratelimit import SlidingWindowLimiter
from redis.exceptions import RedisError

from cqquery.ports import LimitDecision, PortUnavailableError


class RedisLookupLimiter:
    def __init__(self, redis: aioredis.Redis, *, prefix: str, limit: int, window_s: int) -> None:
        self._limiter = SlidingWindowLimiter(redis, prefix=prefix, limit=limit, window_s=window_s)
        self.limit = limit
        self.window_s = window_s

    async def attempt(self, key: str, *, now_s: float) -> LimitDecision:
        try:
            decision = await self._limiter.attempt(key, now_s=now_s)
        except RedisError as exc:
            raise PortUnavailableError(f"lookup limiter unreachable: {exc!r}") from exc
        return LimitDecision(decision.allowed, decision.retry_after_s)
