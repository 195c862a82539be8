"""The PostgreSQL unit of work every service's use cases run in (their ``UnitOfWork`` port).

One pooled connection, one transaction: the service's repositories work inside it
(a subclass binds them to the connection in ``bind``), recorded domain events are encoded
and written to the outbox at ``commit()`` in the same transaction, and leaving the block
without ``commit()`` rolls everything back. An ``IntegrityError`` raised inside the block
(commit included) becomes the stable error its constraint maps to (the service's
``ConstraintTable``), *after* the rollback, so a refused request writes nothing.

The encoder (domain event -> protobuf envelope) is passed in by the entrypoint that owns
the wire format, so no adapter imports a mapper.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

from cqcommon.constraints import ConstraintTable, constraint_errors
from cqcommon.db import Conn, Database
from cqcommon.db import UnitOfWork as Transaction

E = TypeVar("E")


class OutboxUnitOfWork(Generic[E]):
    """``async with Service(db, encode) as uow: ...; await uow.commit()``; a subclass sets
    its repositories in :meth:`bind` and gives its constraint table."""

    def __init__(
        self, db: Database, encode: Callable[[E], EventEnvelope], constraints: ConstraintTable
    ) -> None:
        self._db = db
        self._encode = encode
        self._constraints = constraints
        self._stack = AsyncExitStack()
        self._tx: Transaction | None = None
        self._read_only = False

    def bind(self, conn: Conn) -> None:
        """Create the service's repositories on the transaction's connection."""
        raise NotImplementedError

    def reading(self) -> Self:
        """This unit of work for a use case that only reads (an eligibility question, a
        lookup): its repositories run on an autocommit connection (``Database.reading``:
        no BEGIN, no ROLLBACK, and psycopg keeps its prepared statements), and ``record``
        and ``commit`` refuse, so a write cannot slip in unnoticed."""
        self._read_only = True
        return self

    async def __aenter__(self) -> Self:
        # Entered first, so it exits last: the transaction is rolled back before the
        # constraint error is translated and leaves the block.
        self._stack.enter_context(constraint_errors(self._constraints))
        try:
            if self._read_only:
                conn = await self._stack.enter_async_context(self._db.reading())
            else:
                self._tx = await self._stack.enter_async_context(self._db.unit_of_work())
                conn = self._tx.conn
        except BaseException:
            await self._stack.aclose()
            raise
        self.bind(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._tx = None
        return await self._stack.__aexit__(exc_type, exc, tb)

    @property
    def committed(self) -> bool:
        return self._tx is not None and self._tx.committed

    def _transaction(self) -> Transaction:
        if self._read_only:
            raise RuntimeError("a read-only unit of work records and commits nothing")
        if self._tx is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._tx

    def record(self, event: E) -> None:
        """Queue a domain event for the outbox, written at ``commit()``."""
        self._transaction().record(self._encode(event))

    async def commit(self) -> None:
        await self._transaction().commit()


class SnapshotStore(Protocol):
    """An in-memory store the fake unit of work runs on (unit tests, benches)."""

    outbox: list[Any]
    commits: int

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...


class SnapshotUnitOfWork(Generic[E]):
    """The in-memory counterpart of :class:`OutboxUnitOfWork` (cosmicpython's fake unit of
    work): a snapshot taken on entry is restored unless ``commit()`` was called, so a refused
    request provably writes nothing; recorded events reach ``store.outbox`` at commit. A
    service's fake subclasses it and sets its fake repositories in ``__init__``."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.committed = False
        self._events: list[E] = []
        self._snapshot: Any = None
        self._read_only = False

    def reading(self) -> Self:
        """As :meth:`OutboxUnitOfWork.reading`: ``record`` and ``commit`` refuse."""
        self._read_only = True
        return self

    def _writable(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work records and commits nothing")

    async def __aenter__(self) -> Self:
        self._snapshot = self.store.snapshot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if not self.committed:
            self.store.restore(self._snapshot)
        return None

    def record(self, event: E) -> None:
        self._writable()
        self._events.append(event)

    async def commit(self) -> None:
        self._writable()
        self.store.outbox.extend(self._events)
        self._events = []
        self.store.commits += 1
        self.committed = True
