"""``RedisSmsCodes`` against the session's real Redis (R-SMS-1, R-SMS-2).

Each test gets its own key prefix and a ``FixedClock`` it moves by hand, so cooldowns, code
lives and days pass without sleeping; one test uses a real clock and a 1 s code life to
show the Redis TTL alone ends a code too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis
from cqcommon.clock import SHANGHAI, FixedClock, SystemClock
from cqcommon.settings import Settings
from cqfollow.adapters.redis_sms_codes import RedisSmsCodes, seconds_to_local_midnight
from cqfollow.adapters.sms_senders import sms_codes_for
from cqfollow.domain.sms import (
    CodeCheck,
    CodeCheckResult,
    SmsPhoneLockedError,
    SmsResendTooSoonError,
)

pytestmark = pytest.mark.integration

PHONE = "13900000005"
OTHER_PHONE = "13800000001"
# 10:00 in Chongqing on an ordinary day
START = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)

CodesFactory = Callable[..., RedisSmsCodes]


@pytest.fixture
async def redis(test_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(test_settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"tsms{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def make_codes(
    redis: aioredis.Redis, prefix: str, clock: FixedClock, test_settings: Settings
) -> CodesFactory:
    """RedisSmsCodes with the R-SMS defaults (300 s, 60 s, 5 wrong, 10 a day) unless
    overridden, on this test's prefix and fixed clock."""

    def make(**overrides: object) -> RedisSmsCodes:
        args: dict[str, object] = {
            "secret": test_settings.sms_code_secret,
            "code_ttl_s": 300,
            "resend_interval_s": 60,
            "max_wrong": 5,
            "daily_limit": 10,
            "clock": clock,
            "prefix": prefix,
        }
        args.update(overrides)
        return RedisSmsCodes(redis, **args)  # type: ignore[arg-type]

    return make


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_r_sms_1_codes_are_six_digits_and_single_use(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    assert len(code) == 6 and code.isdigit()
    assert await codes.check(purpose_id="req-1", code=code) == CodeCheckResult(CodeCheck.OK)
    # used up: the same code again finds nothing
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.EXPIRED


async def test_r_sms_1_a_code_is_bound_to_its_purpose(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-a", now=clock.now())
    assert (await codes.check(purpose_id="req-b", code=code)).outcome is CodeCheck.EXPIRED
    assert (await codes.check(purpose_id="req-a", code=code)).outcome is CodeCheck.OK


async def test_r_sms_1_sixty_seconds_between_sends_to_one_phone(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    with pytest.raises(SmsResendTooSoonError) as at_once:
        await codes.issue(phone=PHONE, purpose_id="req-2", now=clock.now())
    assert at_once.value.retry_after_s == 60
    clock.advance(timedelta(seconds=59, milliseconds=500))
    with pytest.raises(SmsResendTooSoonError) as almost:
        await codes.issue(phone=PHONE, purpose_id="req-2", now=clock.now())
    assert almost.value.retry_after_s == 1
    # another phone is not held back by this one's cooldown
    await codes.issue(phone=OTHER_PHONE, purpose_id="req-3", now=clock.now())
    clock.advance(timedelta(milliseconds=500))
    second = await codes.issue(phone=PHONE, purpose_id="req-2", now=clock.now())
    assert (await codes.check(purpose_id="req-2", code=second)).outcome is CodeCheck.OK


async def test_r_sms_1_a_code_lives_five_minutes(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    clock.advance(timedelta(seconds=299))
    assert (await codes.check(purpose_id="req-1", code=wrong_code(code))).outcome is (
        CodeCheck.WRONG
    )
    clock.advance(timedelta(seconds=1))
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.EXPIRED


async def test_r_sms_1_the_redis_ttl_ends_a_code_on_a_real_clock(
    make_codes: CodesFactory, redis: aioredis.Redis, prefix: str
) -> None:
    codes = make_codes(code_ttl_s=0.5, resend_interval_s=0.5, clock=SystemClock())
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=SystemClock().now())
    await asyncio.sleep(0.8)
    assert [key async for key in redis.scan_iter(f"{prefix}:code:*")] == []
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.EXPIRED
    # and the cooldown key is gone with it: the next send is allowed
    await codes.issue(phone=PHONE, purpose_id="req-2", now=SystemClock().now())


async def test_r_sms_1_five_wrong_entries_void_the_code(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    bad = wrong_code(code)
    answers = [await codes.check(purpose_id="req-1", code=bad) for _ in range(5)]
    assert answers == [
        CodeCheckResult(CodeCheck.WRONG, 4),
        CodeCheckResult(CodeCheck.WRONG, 3),
        CodeCheckResult(CodeCheck.WRONG, 2),
        CodeCheckResult(CodeCheck.WRONG, 1),
        CodeCheckResult(CodeCheck.VOID, 0),
    ]
    # the sixth entry, the right code, finds nothing
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.EXPIRED


async def test_r_sms_1_the_right_code_after_four_wrong_entries_passes(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    for _ in range(4):
        await codes.check(purpose_id="req-1", code="not a code")
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.OK


async def test_r_sms_1_wrong_entries_racing_void_the_code_once(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    bad = wrong_code(code)
    answers = await asyncio.gather(*(codes.check(purpose_id="req-1", code=bad) for _ in range(20)))
    outcomes = [a.outcome for a in answers]
    assert outcomes.count(CodeCheck.WRONG) == 4
    assert outcomes.count(CodeCheck.VOID) == 1
    assert outcomes.count(CodeCheck.EXPIRED) == 15


async def test_a_new_code_for_a_purpose_replaces_the_earlier_one(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    first = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    await codes.check(purpose_id="req-1", code=wrong_code(first))
    clock.advance(timedelta(seconds=60))
    second = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    if first != second:
        assert (await codes.check(purpose_id="req-1", code=first)).outcome is CodeCheck.WRONG
        # the new code starts with all its attempts: one wrong entry used one of five
        left = (await codes.check(purpose_id="req-1", code=wrong_code(second))).attempts_left
        assert left == 3
    assert (await codes.check(purpose_id="req-1", code=second)).outcome is CodeCheck.OK


async def test_r_sms_2_the_eleventh_send_of_a_day_locks_the_phone_until_midnight(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes()
    for n in range(10):
        await codes.issue(phone=PHONE, purpose_id=f"req-{n}", now=clock.now())
        clock.advance(timedelta(seconds=61))
    with pytest.raises(SmsPhoneLockedError) as locked:
        await codes.issue(phone=PHONE, purpose_id="req-10", now=clock.now())
    assert locked.value.retry_after_s == seconds_to_local_midnight(clock.now())
    # 10:10:10 Beijing time: locked for the rest of the day, i.e. until 00:00
    assert locked.value.retry_after_s == 13 * 3600 + 49 * 60 + 50
    # still locked later that day, and the lock wins over the cooldown
    clock.advance(timedelta(hours=13))
    with pytest.raises(SmsPhoneLockedError):
        await codes.issue(phone=PHONE, purpose_id="req-11", now=clock.now())
    # another phone is not locked
    await codes.issue(phone=OTHER_PHONE, purpose_id="req-x", now=clock.now())
    # the next Asia/Shanghai day is open again
    clock.at = datetime(2026, 3, 3, 0, 0, 1, tzinfo=SHANGHAI)
    code = await codes.issue(phone=PHONE, purpose_id="req-12", now=clock.now())
    assert (await codes.check(purpose_id="req-12", code=code)).outcome is CodeCheck.OK


async def test_r_sms_2_the_day_is_the_asia_shanghai_day(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes(daily_limit=1)
    # 23:59 UTC on 2 March is 07:59 on 3 March in Chongqing: one day with 08:00 after it
    clock.at = datetime.fromisoformat("2026-03-02T23:59:00+00:00")
    await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    clock.advance(timedelta(minutes=2))  # 00:01 UTC, still 3 March in Chongqing
    with pytest.raises(SmsPhoneLockedError) as locked:
        await codes.issue(phone=PHONE, purpose_id="req-2", now=clock.now())
    assert locked.value.retry_after_s == 15 * 3600 + 59 * 60


async def test_r_sms_1_of_100_concurrent_sends_to_one_phone_exactly_one_gets_a_code(
    make_codes: CodesFactory, clock: FixedClock, redis: aioredis.Redis, prefix: str
) -> None:
    codes = make_codes()
    results = await asyncio.gather(
        *(codes.issue(phone=PHONE, purpose_id=f"req-{n}", now=clock.now()) for n in range(100)),
        return_exceptions=True,
    )
    issued = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, SmsResendTooSoonError)]
    assert len(issued) == 1
    assert len(refused) == 99
    assert len([key async for key in redis.scan_iter(f"{prefix}:code:*")]) == 1
    # the refused sends did not count towards the day: 9 more are allowed, the 11th locks
    codes_small = make_codes(daily_limit=2)
    clock.advance(timedelta(seconds=60))
    await codes_small.issue(phone=PHONE, purpose_id="again", now=clock.now())
    clock.advance(timedelta(seconds=60))
    with pytest.raises(SmsPhoneLockedError):
        await codes_small.issue(phone=PHONE, purpose_id="again-2", now=clock.now())


async def test_release_lifts_the_cooldown_and_drops_the_code_but_the_day_counts_it(
    make_codes: CodesFactory, clock: FixedClock
) -> None:
    codes = make_codes(daily_limit=2)
    code = await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    await codes.release(phone=PHONE, purpose_id="req-1")
    assert (await codes.check(purpose_id="req-1", code=code)).outcome is CodeCheck.EXPIRED
    # the gateway failed: the user may try again at once
    await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())
    # another purpose cannot lift the cooldown this one set
    await codes.release(phone=PHONE, purpose_id="req-other")
    with pytest.raises(SmsResendTooSoonError):
        await codes.issue(phone=PHONE, purpose_id="req-2", now=clock.now())
    await codes.release(phone=PHONE, purpose_id="req-1")
    # two sends counted (limit 2): the third locks
    with pytest.raises(SmsPhoneLockedError):
        await codes.issue(phone=PHONE, purpose_id="req-1", now=clock.now())


async def test_redis_holds_neither_codes_nor_phone_numbers(
    make_codes: CodesFactory, clock: FixedClock, redis: aioredis.Redis, prefix: str
) -> None:
    codes = make_codes(daily_limit=1)
    issued: list[str] = []
    phones = [f"1390000{n:04d}" for n in range(20)]
    for n, phone in enumerate(phones):
        issued.append(await codes.issue(phone=phone, purpose_id=f"req-{n}", now=clock.now()))
    # one phone over its limit, so the lock key exists too
    clock.advance(timedelta(seconds=61))
    with pytest.raises(SmsPhoneLockedError):
        await codes.issue(phone=phones[0], purpose_id="req-lock", now=clock.now())
    words: list[str] = []  # keys, hash fields, digests
    numbers: list[str] = []  # times in ms and counters
    kinds: set[str] = set()
    async for raw_key in redis.scan_iter(f"{prefix}:*"):
        key = _text(raw_key)
        words.append(key)
        kinds.add(key.split(":")[1])
        kind = _text(await redis.type(raw_key))
        if kind == "hash":
            fields = await redis.hgetall(raw_key)
            values = {_text(f): _text(v) for f, v in fields.items()}
            words += values
        else:
            assert kind == "string"
            value = await redis.get(raw_key)
            assert value is not None
            values = {"value": _text(value)}
        for name, value in values.items():
            (numbers if value.isdigit() and name != "d" else words).append(value)
    assert kinds == {"code", "cd", "n", "lock"}
    # No phone anywhere; no code in a key, field name or digest. (A code could turn up by
    # chance inside a 13-digit time in ms, so numbers are checked for phones only.)
    for phone in phones:
        assert all(phone not in w for w in words + numbers)
        assert all(phone[-8:] not in w for w in words)
    for code in issued:
        assert all(code not in w for w in words)


async def test_sms_codes_for_reads_the_settings(
    test_settings: Settings, redis: aioredis.Redis, clock: FixedClock
) -> None:
    settings = test_settings.model_copy(update={"sms_resend_interval_s": 30})
    codes = sms_codes_for(settings, redis, clock)
    purpose = f"req-{uuid.uuid4().hex}"
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    await codes.issue(phone=phone, purpose_id=purpose, now=clock.now())
    with pytest.raises(SmsResendTooSoonError) as soon:
        await codes.issue(phone=phone, purpose_id=purpose, now=clock.now())
    assert soon.value.retry_after_s == 30
    await codes.release(phone=phone, purpose_id=purpose)
