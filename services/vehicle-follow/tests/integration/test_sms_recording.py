"""The recording SMS adapter on the session's real Redis (R-SMS-3): what would have been
sent is kept, capped and expiring, and read back newest first for the sandbox outbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.settings import Settings
from cqcommon.sms.recording import RecordingSmsSender
from cqcommon.sms.senders import sandbox_outbox_for, sms_sender_for

pytestmark = pytest.mark.integration

TEMPLATE = "SMS_000000000"


@pytest.fixture
async def redis(test_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(test_settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def outbox_key() -> str:
    return f"tsms-outbox-{uuid.uuid4().hex[:8]}"


async def test_r_sms_3_a_recorded_message_reads_back_whole(
    redis: aioredis.Redis, outbox_key: str
) -> None:
    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    sender = RecordingSmsSender(redis, clock=clock, key=outbox_key)
    message_id = await sender.send(
        phone="13900000005", template_code=TEMPLATE, params={"code": "012345"}
    )
    assert message_id.startswith("rec-")
    [sent] = await sender.recent(None, 10)
    assert sent.message_id == message_id
    assert sent.phone == "13900000005"
    assert sent.template_code == TEMPLATE
    assert dict(sent.params) == {"code": "012345"}  # leading zero kept
    assert sent.sent_at == clock.now()


async def test_r_sms_3_recent_is_newest_first_filtered_by_phone_and_limited(
    redis: aioredis.Redis, outbox_key: str
) -> None:
    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    sender = RecordingSmsSender(redis, clock=clock, key=outbox_key)
    for n in range(6):
        phone = "13900000005" if n % 2 == 0 else "13800000001"
        await sender.send(phone=phone, template_code=TEMPLATE, params={"code": f"{n:06d}"})
        clock.advance(timedelta(seconds=1))
    everyone = await sender.recent(None, 100)
    assert [m.params["code"] for m in everyone] == [f"{n:06d}" for n in (5, 4, 3, 2, 1, 0)]
    assert [m.params["code"] for m in await sender.recent("13900000005", 2)] == [
        "000004",
        "000002",
    ]
    assert [m.params["code"] for m in await sender.recent("", 1)] == ["000005"]
    assert await sender.recent("13700000000", 10) == []


async def test_the_outbox_is_capped_and_expires(redis: aioredis.Redis, outbox_key: str) -> None:
    sender = RecordingSmsSender(redis, key=outbox_key, max_kept=5, ttl_s=3600)
    await asyncio.gather(
        *(
            sender.send(phone="13900000005", template_code=TEMPLATE, params={"code": f"{n:06d}"})
            for n in range(12)
        )
    )
    assert await redis.llen(outbox_key) == 5
    assert 0 < await redis.ttl(outbox_key) <= 3600
    assert len(await sender.recent(None, 1000)) == 5


async def test_a_damaged_entry_does_not_hide_the_rest(
    redis: aioredis.Redis, outbox_key: str
) -> None:
    sender = RecordingSmsSender(redis, key=outbox_key)
    await sender.send(phone="13900000005", template_code=TEMPLATE, params={"code": "111111"})
    await redis.lpush(outbox_key, b"not json", b'{"id": "x"}')
    [kept] = await sender.recent(None, 10)
    assert kept.params == {"code": "111111"}


async def test_the_sandbox_outbox_reads_what_the_configured_recording_sender_kept(
    test_settings: Settings, redis: aioredis.Redis
) -> None:
    settings = test_settings.model_copy(update={"sms_provider": "recording", "sandbox_mode": True})
    sender = sms_sender_for(settings, redis)
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    await sender.send(phone=phone, template_code=TEMPLATE, params={"code": "654321"})
    outbox = sandbox_outbox_for(settings, redis)
    assert outbox is not None
    [sent] = await outbox.recent(phone, 10)
    assert sent.params == {"code": "654321"}
    outside = settings.model_copy(update={"sandbox_mode": False})
    assert sandbox_outbox_for(outside, redis) is None
