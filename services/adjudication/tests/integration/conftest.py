"""Fixtures of adjudication's integration tests: the adjudication gRPC server alone on the
session's test database, and adjudication's registry copy written as the registry
consumer writes it (the people, vehicles, licences and violation codes a test needs)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from cqadjudication.adapters.postgres_registry import PostgresRegistryCopy
from cqadjudication.wiring import SPEC
from cqcommon.db import Database
from cqcommon.grpc_client import make_channel
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.stack import free_port
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub

#: ``async with registry_copy(codes) as copy``: see the ``registry_copy`` fixture.
RegistryCopies = Callable[
    [Mapping[str, int]], contextlib.AbstractAsyncContextManager[PostgresRegistryCopy]
]


@pytest.fixture(scope="module")
async def adjudication(
    test_settings: Settings, migrated_database: Any
) -> AsyncIterator[AdjudicationServiceAsyncStub]:
    """The adjudication gRPC server alone (no relay: outbox rows stay to be read)."""
    runtime = ServiceRuntime(SPEC, test_settings, roles=("serve",), port=free_port())
    await runtime.start()
    channel = make_channel(f"127.0.0.1:{runtime.port}")
    try:
        stub: AdjudicationServiceAsyncStub = pb_grpc.AdjudicationServiceStub(channel)
        yield stub
    finally:
        await channel.close(None)
        await runtime.stop(grace_s=1)


@pytest.fixture
def registry_copy(test_settings: Settings, migrated_database: Any) -> RegistryCopies:
    """``async with registry_copy({"1345": 3}) as copy``: adjudication's registry copy in
    one transaction, committed at the end with the given violation codes (code -> points)
    upserted as the registry consumer would have written them."""

    @contextlib.asynccontextmanager
    async def session(codes: Mapping[str, int]) -> AsyncIterator[PostgresRegistryCopy]:
        db = Database(test_settings.database_url, "adjudication", max_size=1)
        await db.open()
        try:
            async with db.transaction() as conn:
                copy = PostgresRegistryCopy(conn)
                yield copy
                for code, points in codes.items():
                    await copy.upsert_violation_code(
                        code=code,
                        description_zh=f"测试违法代码 {code}",
                        points=points,
                        fine_min_fen=5_000,
                        fine_max_fen=200_000,
                    )
        finally:
            await db.close()

    return session
