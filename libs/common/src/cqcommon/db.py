"""PostgreSQL access: one async connection pool per process, bound to a service's schema,
and the unit of work that holds a change together with its outbox rows.

A service's tables live in its own schema (``search_path`` is set per connection), so
two services never share a table even when they share a database server.

When a pooled connection turns out broken (PostgreSQL restarted, a backend was killed),
its idle siblings most likely died with it: the pool checks them all at once instead of
handing them out one failed attempt at a time. A consumer retrying with backoff would
otherwise walk through every dead connection and fall ~20 s behind after a 2 s restart
(found by the PostgreSQL-restart fault drill, bench/drills).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cqcommon.outbox_notify import OutboxNotifier

if TYPE_CHECKING:
    from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

_SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

Conn = AsyncConnection[TupleRow]


NIL_UUID = "00000000-0000-0000-0000-000000000000"


def uuid_or_nil(value: str) -> str:
    """``value`` as a canonical UUID, or the nil UUID (which matches no row): an id a
    client guessed or mistyped is simply not found, never a database error."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return NIL_UUID


def check_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain identifiers are allowed."""
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


class Database:
    """An async pool whose connections see ``schema`` first on their search path."""

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        notify_outbox: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.schema = check_schema_name(schema)
        self.notify_outbox = notify_outbox
        self._notifier: OutboxNotifier | None = None
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"options": f"-c search_path={self.schema},public", "connect_timeout": 5},
            name=f"{schema}-pool",
        )
        self._checking = False

    async def open(self, *, wait: bool = True) -> None:
        await self.pool.open(wait=wait, timeout=15)

    async def close(self) -> None:
        if self._notifier is not None:
            await self._notifier.close()
        await self.pool.close()

    def _events_committed(self) -> None:
        """Wake this schema's relays once the commit that wrote events is done
        (``cqcommon.outbox_notify``: after the commit, so commits never queue on NOTIFY)."""
        if not self.notify_outbox:
            return
        if self._notifier is None:
            self._notifier = OutboxNotifier(self.conninfo, self.schema)
        self._notifier.poke()

    @property
    def outbox_notifier(self) -> OutboxNotifier | None:
        return self._notifier

    @asynccontextmanager
    async def _pooled(self) -> AsyncIterator[Conn]:
        """A pooled connection; if it breaks, the idle ones are checked before the next use."""
        async with self.pool.connection() as conn:
            if conn.autocommit:  # cannot happen (``reading`` switches back); cheap to check
                await conn.set_autocommit(False)
            try:
                yield conn
            except psycopg.OperationalError:
                if conn.broken:
                    await self._check_idle()
                raise

    async def _check_idle(self) -> None:
        if self._checking:
            return  # one check at a time covers every connection idle now
        self._checking = True
        try:
            with contextlib.suppress(psycopg.Error):
                await self.pool.check()
        finally:
            self._checking = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection for reads (committed or rolled back by the pool on exit)."""
        async with self._pooled() as conn:
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Conn]:
        """A pooled connection for reads only, each statement on its own (autocommit).

        Why not a transaction: a read in one costs a ``BEGIN`` and a ``COMMIT`` or
        ``ROLLBACK`` round trip, and on ``ROLLBACK`` psycopg drops every statement it had
        prepared on the connection (``DEALLOCATE ALL``, one round trip more), so the
        connections of a service whose reads ended that way re-planned every query (seen in
        the handling bench: a ``DEALLOCATE ALL`` per read-only unit of work). Under READ
        COMMITTED, the only isolation level used here, every statement of a transaction
        takes its own snapshot anyway, so a sequence of reads sees what it would have seen
        inside one. Not for writes, nor for locking reads (``FOR UPDATE``): those need the
        transaction of ``unit_of_work``.
        """
        async with self._pooled() as conn:
            await conn.set_autocommit(True)
            try:
                yield conn
            finally:
                # never back to the pool in autocommit: the next unit of work would write
                # statement by statement. A connection that cannot switch back (a query
                # still running after a cancellation) is closed; the pool drops it
                try:
                    await conn.set_autocommit(False)
                except psycopg.Error:
                    await conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A connection inside one transaction: committed on normal exit, rolled back on error."""
        async with self._pooled() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction that is rolled back unless ``commit()`` is called inside the block."""
        async with self._pooled() as conn:
            uow = UnitOfWork(conn, self.schema, on_events_committed=self._events_committed)
            try:
                yield uow
            finally:
                if not uow.committed:
                    await conn.rollback()

    async def ping(self) -> bool:
        """True when the database answers a trivial query (health checks)."""
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            return True
        except (psycopg.Error, TimeoutError, OSError):
            return False
        except Exception:  # the pool raises its own PoolTimeout (subclass of psycopg.Error)
            return False


class UnitOfWork:
    """One transaction's change and the events it records (written to the outbox on commit)."""

    def __init__(
        self,
        conn: Conn,
        schema: str,
        *,
        on_events_committed: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.committed = False
        self._events: list[EventEnvelope] = []
        self._on_events_committed = on_events_committed

    def record(self, envelope: EventEnvelope) -> None:
        """Queue an event; it reaches the outbox in this same transaction at ``commit()``."""
        self._events.append(envelope)

    async def commit(self) -> None:
        from cqcommon.outbox import append_all_to_outbox  # local: outbox imports db types

        wrote_events = bool(self._events)
        await append_all_to_outbox(self.conn, self._events)
        self._events.clear()
        await self.conn.commit()
        self.committed = True
        if wrote_events and self._on_events_committed is not None:
            self._on_events_committed()
