"""After the database drops every connection (a PostgreSQL restart), one failed attempt is
enough: the pool checks its idle connections at the first broken one, so the next attempt
gets a live connection instead of the next dead one (found by the PostgreSQL-restart fault
drill, bench/drills: a consumer retrying with backoff fell ~20 s behind a 2 s restart)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from cqcommon.db import Database
from cqcommon.settings import Settings

pytestmark = pytest.mark.integration

POOL = 4


@pytest.fixture
async def db(test_settings: Settings) -> AsyncIterator[Database]:
    schema = f"brokenconn_{uuid.uuid4().hex[:8]}"
    database = Database(test_settings.database_url, schema, min_size=POOL, max_size=POOL)
    await database.open()
    yield database
    await database.close()


async def _backend_pids(db: Database) -> set[int]:
    """The server pids of every pooled connection (all held at once, then given back)."""
    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(db.connection()) for _ in range(POOL)]
        return {conn.info.backend_pid for conn in conns}


async def test_after_every_connection_dies_the_second_attempt_succeeds(
    db: Database, test_settings: Settings
) -> None:
    pids = await _backend_pids(db)
    assert len(pids) == POOL
    async with await psycopg.AsyncConnection.connect(
        test_settings.database_url, autocommit=True
    ) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(pids),)
        )
    with pytest.raises(psycopg.OperationalError):
        async with db.transaction() as conn:
            await conn.execute("SELECT 1")
    for _ in range(50):  # the pool refills in the background
        if db.pool.get_stats().get("pool_available", 0) >= 1:
            break
        await asyncio.sleep(0.1)
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT 1")
        assert await cur.fetchone() == (1,)
