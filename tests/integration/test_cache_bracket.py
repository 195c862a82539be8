"""The read-model cache's invalidation brackets against a real Redis: the brackets of one
consumer batch share one pipeline, and a subject's "changing" counter goes up and down by
the same amount however the calls were grouped (adapters/cache.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from cqcommon.inbox import TransientError
from cqcommon.settings import Settings
from cqquery.adapters.cache import ReadModelCache

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(test_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(test_settings.redis_url)
    yield client
    await client.aclose()


class CountingRoundTrips:
    """Counts what a cache sends: single commands (a script call is one) and pipelines."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.count = 0
        pipeline = redis.pipeline
        execute_command: Any = redis.execute_command  # redis-py leaves it untyped

        def counted_pipeline(*args: object, **kwargs: object) -> object:
            self.count += 1
            return pipeline(*args, **kwargs)  # type: ignore[arg-type]

        async def counted_command(*args: object, **kwargs: object) -> object:
            self.count += 1
            return await execute_command(*args, **kwargs)

        redis.pipeline = counted_pipeline  # type: ignore[method-assign,assignment]
        redis.execute_command = counted_command  # type: ignore[method-assign]


async def test_a_batchs_brackets_share_one_round_trip_and_balance(redis: aioredis.Redis) -> None:
    prefix = f"qt{uuid.uuid4().hex[:6]}"
    cache = ReadModelCache(redis, ttl_s=60, prefix=prefix)
    await cache.begin_change([("vehicle", "warm")])  # the script is loaded once
    await cache.end_change([("vehicle", "warm")])
    trips = CountingRoundTrips(redis)
    # a batch of three events: two touch vehicle v1, one v2 (as a poll's batch would)
    batch = [[("vehicle", "v1")], [("vehicle", "v1"), ("licence", "l1")], [("vehicle", "v2")]]
    await asyncio.gather(*(cache.begin_change(s) for s in batch))
    assert trips.count == 1
    assert int(await redis.get(f"{prefix}:dirty:vehicle:v1") or 0) == 2
    assert int(await redis.get(f"{prefix}:dirty:vehicle:v2") or 0) == 1
    version_during = int(await redis.get(f"{prefix}:ver:vehicle:v1") or 0)

    # the ends, one at a time (as single events would): the counters come back to 0
    before = trips.count
    for subjects in batch:
        await cache.end_change(subjects)
    assert trips.count - before == 3
    for kind, sid in (("vehicle", "v1"), ("vehicle", "v2"), ("licence", "l1")):
        assert int(await redis.get(f"{prefix}:dirty:{kind}:{sid}") or 0) == 0
    assert int(await redis.get(f"{prefix}:ver:vehicle:v1") or 0) > version_during


async def test_a_failed_pipeline_fails_every_bracket_that_joined_it(
    test_settings: Settings,
) -> None:
    down = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    cache = ReadModelCache(down, ttl_s=60)
    results = await asyncio.gather(
        *(cache.begin_change([("vehicle", f"v{i}")]) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, TransientError) for r in results), results
    await down.aclose()
