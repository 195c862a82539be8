"""The PostgreSQL unit of work of adjudication's use cases (the ``UnitOfWork`` port).

The transaction, the outbox and the constraint translation are the shared
``cqcommon.unit_of_work.OutboxUnitOfWork``; this binds the adjudication repositories to its
connection.
"""

from __future__ import annotations

from collections.abc import Callable

from cqcommon.constraints import ConstraintTable
from cqcommon.db import Conn, Database
from cqcommon.unit_of_work import OutboxUnitOfWork
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


class PostgresUnitOfWork(OutboxUnitOfWork[DomainEvent]):
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
        super().__init__(db, encode, constraints)

    def bind(self, conn: Conn) -> None:
        self.violations = PostgresViolationRepository(conn)
        self.handlings = PostgresHandlingRepository(conn)
        self.points = PostgresPointsLedger(conn)
        self.alerts = PostgresAlertRepository(conn)
        self.notices = PostgresNoticeRepository(conn)
        self.rollover = PostgresRollover(conn)
