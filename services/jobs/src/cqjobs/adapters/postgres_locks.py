"""The cluster-wide lock per job: a PostgreSQL session advisory lock, taken with
``pg_try_advisory_lock`` (never waits: a second runner skips the job) on a connection of
its own that is held while the job runs.

Why a session lock on its own connection: the lock lives exactly as long as that
connection, so a runner that dies (crash, kill -9, a lost network) releases it when
PostgreSQL notices the connection is gone; no lease to expire and no stale row to clean.
The pool's connections are not used: a pooled connection handed back with the lock still
held would keep it for whoever borrows it next.

The key is (``LOCK_CLASS``, hashtext('cqjobs:' || job)): the two-int form keeps these
locks apart from the migrations' single-key ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg

log = logging.getLogger(__name__)

#: "JOBS" in ASCII: the advisory lock class of the runner's locks
LOCK_CLASS = 0x4A4F4253


class PostgresLease:
    def __init__(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        self.conn = conn

    async def alive(self) -> bool:
        try:
            await self.conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


class AdvisoryLocks:
    def __init__(self, conninfo: str, *, application_name: str = "cqjobs") -> None:
        self.conninfo = conninfo
        self.application_name = application_name

    @contextlib.asynccontextmanager
    async def hold(self, job: str) -> AsyncIterator[PostgresLease | None]:
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=5,
            application_name=self.application_name,
        )
        try:
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, f"cqjobs:{job}")
            )
            row = await cur.fetchone()
            if row is None or not row[0]:
                yield None
                return
            try:
                yield PostgresLease(conn)
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                        (LOCK_CLASS, f"cqjobs:{job}"),
                    )
        finally:
            # closing the connection releases the lock in any case
            with contextlib.suppress(psycopg.Error):
                await conn.close()
