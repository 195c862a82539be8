"""The PostgreSQL unit of work of payment's use cases (the ``UnitOfWork`` port).

The transaction, the outbox and the constraint translation are the shared
``cqcommon.unit_of_work.OutboxUnitOfWork``; this binds the payment repositories to its
connection.
"""

from __future__ import annotations

from collections.abc import Callable

from cqcommon.constraints import ConstraintTable
from cqcommon.db import Conn, Database
from cqcommon.unit_of_work import OutboxUnitOfWork
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


class PostgresUnitOfWork(OutboxUnitOfWork[DomainEvent]):
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
        super().__init__(db, encode, constraints)

    def bind(self, conn: Conn) -> None:
        self.decisions = PostgresDecisionRepository(conn)
        self.payments = PostgresPaymentRepository(conn)
        self.keys = PostgresIdempotencyKeys(conn)
        self.notifications = PostgresNotificationRepository(conn)
        self.refunds = PostgresRefundRepository(conn)
        self.feedback = PostgresFeedbackRepository(conn)
        self.reconciliation = PostgresReconciliationRepository(conn)
        self.overdue = PostgresOverdueRepository(conn)
