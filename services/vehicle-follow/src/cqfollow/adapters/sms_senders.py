"""The follow service's SMS code store from its settings (R-SMS-1, R-SMS-2).

The senders themselves (recording, Alibaba Cloud, and which one the settings pick) live in
the shared library, ``cqcommon.sms.senders``, since payment sends SMS too; the code store
is the follow service's alone (R-SMS-1/2 are about consent codes).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from cqcommon.clock import Clock
from cqcommon.settings import Settings

from cqfollow.adapters.redis_sms_codes import RedisSmsCodes


def sms_codes_for(settings: Settings, redis: aioredis.Redis, clock: Clock) -> RedisSmsCodes:
    """The Redis SMS codes with the settings' R-SMS-1/2 limits and secret."""
    return RedisSmsCodes(
        redis,
        secret=settings.sms_code_secret,
        code_ttl_s=settings.sms_code_ttl_s,
        resend_interval_s=settings.sms_resend_interval_s,
        max_wrong=settings.sms_max_wrong_entries,
        daily_limit=settings.sms_daily_limit,
        clock=clock,
    )
