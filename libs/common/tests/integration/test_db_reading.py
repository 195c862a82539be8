"""Reads without a transaction (``Database.reading``, ``OutboxUnitOfWork.reading``), on
real PostgreSQL: no BEGIN/ROLLBACK round trips, and psycopg keeps its prepared statements,
which a ROLLBACK makes it drop (DEALLOCATE ALL), so read-only units of work that ended
with one made their service re-plan every query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cqcommon.constraints import ConstraintTable
from cqcommon.db import Conn, Database
from cqcommon.settings import Settings
from cqcommon.unit_of_work import OutboxUnitOfWork
from psycopg.pq import TransactionStatus

pytestmark = pytest.mark.integration

QUERY = "SELECT count(*) FROM applied WHERE person_id = %s"


async def _prepared_here(conn: Conn) -> int:
    cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _prepare(conn: Conn) -> None:
    # psycopg prepares a statement on its connection from its 6th execution on
    for _ in range(6):
        await conn.execute(QUERY, ("x",))


@pytest.fixture
async def one_conn(plumbing: tuple[Database, Settings]) -> AsyncIterator[Database]:
    """The plumbing schema behind a pool of one connection: every use gets the same one,
    so what a use leaves on it (autocommit, prepared statements) is what the next finds."""
    base, settings = plumbing
    db = Database(settings.database_url, base.schema, max_size=1)
    await db.open()
    yield db
    await db.close()


async def test_a_read_runs_outside_a_transaction_and_keeps_prepared_statements(
    one_conn: Database,
) -> None:
    db = one_conn
    async with db.reading() as conn:
        await _prepare(conn)
        assert conn.info.transaction_status == TransactionStatus.IDLE  # no BEGIN sent
        assert await _prepared_here(conn) >= 1
    async with db.reading() as conn:
        assert await _prepared_here(conn) >= 1  # still there for the next read
    async with db.unit_of_work() as uow:
        # back to transactions after a read: the connection is not left in autocommit
        await uow.conn.execute(QUERY, ("x",))
        assert uow.conn.info.transaction_status == TransactionStatus.INTRANS
        assert not uow.conn.autocommit
    # ...and that unit of work, left without commit, rolled back: psycopg dropped them
    async with db.reading() as conn:
        assert await _prepared_here(conn) == 0


async def test_a_failed_read_leaves_the_connection_usable_and_in_transaction_mode(
    one_conn: Database,
) -> None:
    db = one_conn
    with pytest.raises(Exception, match="no_such_table"):
        async with db.reading() as conn:
            await conn.execute("SELECT * FROM no_such_table")
    async with db.unit_of_work() as uow:
        assert not uow.conn.autocommit
        await uow.conn.execute("INSERT INTO applied (person_id) VALUES ('kept')")
        await uow.commit()
    async with db.reading() as conn:
        row = await (await conn.execute(QUERY, ("kept",))).fetchone()
        assert row == (1,)


class _Plain(OutboxUnitOfWork[Any]):
    def bind(self, conn: Conn) -> None:
        self.conn = conn


async def test_a_read_only_unit_of_work_refuses_to_record_or_commit(
    plumbing: tuple[Database, Settings],
) -> None:
    db, _ = plumbing
    async with _Plain(db, lambda e: e, ConstraintTable(db.schema, {})).reading() as uow:
        assert uow.conn.autocommit
        with pytest.raises(RuntimeError, match="read-only"):
            uow.record(object())
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
        assert not uow.committed


async def test_a_read_cancelled_mid_query_never_hands_an_autocommit_connection_to_a_writer(
    one_conn: Database,
) -> None:
    db = one_conn

    async def slow_read() -> None:
        async with db.reading() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow_read(), 0.3)
    async with db.unit_of_work() as uow:
        assert not uow.conn.autocommit
        await uow.conn.execute("INSERT INTO applied (person_id) VALUES ('tx')")
        assert uow.conn.info.transaction_status == TransactionStatus.INTRANS
