"""A sliding-window rate limiter in Redis (one sorted set per key, one atomic script).

Used for attempts that guess secrets — proof lookups (R-Q-1), SMS codes — so it counts
every attempt, successful or not, and answers with how long to wait. The window slides:
at most ``limit`` attempts in any ``window_s`` seconds, without the burst of twice the
limit that a fixed per-minute counter allows at a minute's edge.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS[1] the set; ARGV: now (ms), window (ms), limit, member.
# Returns {allowed (0/1), ms until the oldest attempt leaves the window}.
_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = window
if oldest[2] then wait = tonumber(oldest[2]) + window - now end
return {0, wait}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float


class SlidingWindowLimiter:
    """At most ``limit`` attempts per ``window_s`` per key."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str, limit: int, window_s: float = 60.0
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window_ms = int(window_s * 1000)
        self._script = redis.register_script(_SCRIPT)

    async def attempt(self, key: str, *, now_s: float) -> Decision:
        """Count one attempt for ``key`` at ``now_s`` (epoch seconds); raises Redis errors."""
        now_ms = int(now_s * 1000)
        allowed, wait_ms = await self._script(
            keys=[f"{self.prefix}:{key}"],
            args=[now_ms, self.window_ms, self.limit, f"{now_ms}-{uuid.uuid4().hex}"],
        )
        if int(allowed):
            return Decision(True, 0.0)
        return Decision(False, max(1.0, math.ceil(int(wait_ms) / 1000)))
