"""The PostgreSQL unit of work of payment's use cases (the ``UnitOfWork`` port).

One pooled connection, one transaction: the repositories work inside it, recorded domain
events are encoded and written to the outbox at ``commit()`` in the same transaction, and
leaving the block without ``commit()`` rolls everything back. An ``IntegrityError`` raised
inside the block (commit included) becomes the stable error its constraint maps to
(``adapters.constraints``), *after* the rollback, so a refused request writes nothing.

Use cases that call the provider between transactions open one unit of work per
transaction (``UnitOfWorkFactory``); nothing here is held across a provider call.
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

from cqpayment.adapters.constraints import PAYMENT_CONSTRAINTS
from cqpayment.adapters.postgres_jobs import (
    PostgresOverdueRepository,
    PostgresReconciliationRepository,
)
from cqpayment.adapters.postgres_keys import PostgresIdempotencyKeys
from cqpayment.adapters.postgres_payments import (
    PostgresDecisionRepository,
    PostgresPaymentRepository,
)
from cqpayment.adapters.postgres_refunds import (
    PostgresFeedbackRepository,
    PostgresNotificationRepository,
    PostgresRefundRepository,
)
from cqpayment.domain.events import DomainEvent

EventEncoder = Callable[[DomainEvent], EventEnvelope]


class PostgresUnitOfWork:
    """``async with PostgresUnitOfWork(db, encode) as uow: ...; await uow.commit()``."""

    decisions: PostgresDecisionRepository
    payments: PostgresPaymentRepository
    keys: PostgresIdempotencyKeys
    notifications: PostgresNotificationRepository
    refunds: PostgresRefundRepository
    feedback: PostgresFeedbackRepository
    reconciliation: PostgresReconciliationRepository
    overdue: PostgresOverdueRepository

    def __init__(
        self,
        db: Database,
        encode: EventEncoder,
        *,
        constraints: ConstraintTable = PAYMENT_CONSTRAINTS,
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
        self.decisions = PostgresDecisionRepository(conn)
        self.payments = PostgresPaymentRepository(conn)
        self.keys = PostgresIdempotencyKeys(conn)
        self.notifications = PostgresNotificationRepository(conn)
        self.refunds = PostgresRefundRepository(conn)
        self.feedback = PostgresFeedbackRepository(conn)
        self.reconciliation = PostgresReconciliationRepository(conn)
        self.overdue = PostgresOverdueRepository(conn)
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
