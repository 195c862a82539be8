"""The PostgreSQL unit of work of adjudication's use cases (the ``UnitOfWork`` port).

One pooled connection, one transaction: the repositories (``violations``, ``handlings``,
``points``, ``alerts``, and for the nightly jobs ``notices`` and ``rollover``) work inside it, recorded domain
events are encoded and written to the outbox at ``commit()`` in the same transaction, and
leaving the block without ``commit()`` rolls everything back. An ``IntegrityError`` raised
inside the block (commit included) becomes the stable error its constraint maps to
(``adapters.constraints``), *after* the rollback, so a refused request writes nothing.

The encoder (domain event -> protobuf envelope) is passed in by the entrypoint that owns
the wire format, so this adapter imports no mapper.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType

from cqcommon.constraints import ConstraintTable, constraint_errors
from cqcommon.db import Database
from cqcommon.db import UnitOfWork as Transaction
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

from cqadjudication.adapters.constraints import ADJUDICATION_CONSTRAINTS
from cqadjudication.adapters.postgres_handlings import PostgresHandlingRepository
from cqadjudication.adapters.postgres_notices import PostgresNoticeRepository
from cqadjudication.adapters.postgres_points import (
    PostgresAlertRepository,
    PostgresPointsLedger,
    PostgresRollover,
)
from cqadjudication.adapters.postgres_violations import PostgresViolationRepository
from cqadjudication.domain.events import DomainEvent

EventEncoder = Callable[[DomainEvent], EventEnvelope]


class PostgresUnitOfWork:
    """``async with PostgresUnitOfWork(db, encode) as uow: ...; await uow.commit()``."""

    violations: PostgresViolationRepository
    handlings: PostgresHandlingRepository
    points: PostgresPointsLedger
    alerts: PostgresAlertRepository
    notices: PostgresNoticeRepository
    rollover: PostgresRollover

    def __init__(
        self,
        db: Database,
        encode: EventEncoder,
        *,
        constraints: ConstraintTable = ADJUDICATION_CONSTRAINTS,
    ) -> None:
        self._db = db
        self._encode = encode
        self._constraints = constraints
        self._stack = AsyncExitStack()
        self._tx: Transaction | None = None

    async def __aenter__(self) -> PostgresUnitOfWork:
        # Entered first, so it exits last: the transaction is rolled back before the
        # constraint error is translated and leaves the block.
        self._stack.enter_context(constraint_errors(self._constraints))
        try:
            self._tx = await self._stack.enter_async_context(self._db.unit_of_work())
        except BaseException:
            await self._stack.aclose()
            raise
        conn = self._tx.conn
        self.violations = PostgresViolationRepository(conn)
        self.handlings = PostgresHandlingRepository(conn)
        self.points = PostgresPointsLedger(conn)
        self.alerts = PostgresAlertRepository(conn)
        self.notices = PostgresNoticeRepository(conn)
        self.rollover = PostgresRollover(conn)
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
        if self._tx is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._tx

    def record(self, event: DomainEvent) -> None:
        self._transaction().record(self._encode(event))

    async def commit(self) -> None:
        await self._transaction().commit()
