"""Fixtures of the follow service's integration tests: the follow gRPC server alone on the
session's test database and Redis, with the production SMS wiring (``bootstrap``: codes in
Redis with the Lua scripts, the recording sender, the sandbox outbox), and a connection
pool on follow's schema for writing the registry copy as the consumer does and reading
tables back.

The server runs in sandbox mode with the recording SMS provider: the tests play the friend
who reads the code out by reading the sandbox outbox (``ListSandboxSms``) as staff.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from cqcommon.db import Database
from cqcommon.grpc_client import make_channel
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.stack import free_port
from cqfollow.wiring import SPEC
from cqtraffic.follow.v1 import follow_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from cqtraffic.follow.v1.follow_pb2_grpc import FollowServiceAsyncStub


@contextlib.asynccontextmanager
async def follow_server(settings: Settings) -> AsyncIterator[FollowServiceAsyncStub]:
    runtime = ServiceRuntime(SPEC, settings, roles=("serve",), port=free_port())
    await runtime.start()
    channel = make_channel(f"127.0.0.1:{runtime.port}")
    try:
        stub: FollowServiceAsyncStub = pb_grpc.FollowServiceStub(channel)
        yield stub
    finally:
        await channel.close(None)
        await runtime.stop(grace_s=1)


@pytest.fixture(scope="module")
def follow_settings(test_settings: Settings) -> Settings:
    """Sandbox mode, recording SMS, a pool big enough for the races to race."""
    return test_settings.model_copy(
        update={"sandbox_mode": True, "sms_provider": "recording", "db_pool_max": 20}
    )


@pytest.fixture(scope="module")
async def follow(
    follow_settings: Settings, migrated_database: Any
) -> AsyncIterator[FollowServiceAsyncStub]:
    """The follow gRPC server alone (no relay: outbox rows stay to be read)."""
    async with follow_server(follow_settings) as stub:
        yield stub


@pytest.fixture(scope="module")
async def follow_db(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Database]:
    """A small pool on follow's schema (registry copy writes, table reads)."""
    db = Database(test_settings.database_url, "follow", max_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
