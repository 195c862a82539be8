"""Which SMS sender a process uses, from its settings (R-SMS-3).

``sms_provider`` picks the sender: ``recording`` (tests, the sandbox: nothing leaves the
machine, staff read the outbox) or ``aliyun`` (Alibaba Cloud SMS). Any provider is allowed
in any mode, but a recording sender outside sandbox mode means no message reaches a phone,
so it is logged at WARNING when the process starts. The Alibaba Cloud SDK is imported only
when it is used (it takes about a second to import).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from cqcommon.clock import Clock
from cqcommon.settings import Settings
from cqcommon.sms import SmsSender
from cqcommon.sms.recording import RecordingSmsSender

log = logging.getLogger(__name__)


def sms_sender_for(
    settings: Settings, redis: aioredis.Redis, clock: Clock | None = None
) -> SmsSender:
    """The ``SmsSender`` the settings name (``sms_provider``)."""
    if settings.sms_provider == "aliyun":
        from cqcommon.sms.aliyun import AliyunSmsSender

        return AliyunSmsSender(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret,
            sign_name=settings.aliyun_sms_sign_name,
            endpoint=settings.aliyun_sms_endpoint,
            timeout_s=settings.sms_timeout_s,
        )
    if not settings.sandbox_mode:
        log.warning(
            "SMS_PROVIDER=recording outside sandbox mode: messages are recorded in Redis,"
            " not sent to any phone"
        )
    return RecordingSmsSender(redis, clock=clock)


def sandbox_outbox_for(settings: Settings, redis: aioredis.Redis) -> RecordingSmsSender | None:
    """The recording outbox ``ListSandboxSms`` reads: in sandbox mode only (R-SMS-3); the
    outbox holds codes in clear, so outside the sandbox there is nothing to read."""
    if not settings.sandbox_mode:
        return None
    return RecordingSmsSender(redis)
