"""The PostgreSQL unit of work of the follow use cases (the ``UnitOfWork`` port).

The transaction, the outbox and the constraint translation are the shared
``cqcommon.unit_of_work.OutboxUnitOfWork``; this binds the follow repositories to its
connection.

Use cases that send an SMS between transactions open one unit of work per transaction
(``UnitOfWorkFactory``); nothing here is held across an SMS gateway call.
"""

from __future__ import annotations

from collections.abc import Callable

from cqcommon.constraints import ConstraintTable
from cqcommon.db import Conn, Database
from cqcommon.unit_of_work import OutboxUnitOfWork
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

from cqfollow.adapters.constraints import FOLLOW_CONSTRAINTS
from cqfollow.adapters.postgres_follows import (
    PostgresFollowRepository,
    PostgresFollowRequestRepository,
)
from cqfollow.adapters.postgres_registry import PostgresRegistryReader
from cqfollow.domain.events import DomainEvent

EventEncoder = Callable[[DomainEvent], EventEnvelope]


class PostgresUnitOfWork(OutboxUnitOfWork[DomainEvent]):
    """``async with PostgresUnitOfWork(db, encode) as uow: ...; await uow.commit()``."""

    registry: PostgresRegistryReader
    follows: PostgresFollowRepository
    requests: PostgresFollowRequestRepository

    def __init__(
        self,
        db: Database,
        encode: EventEncoder,
        *,
        constraints: ConstraintTable = FOLLOW_CONSTRAINTS,
    ) -> None:
        super().__init__(db, encode, constraints)

    def bind(self, conn: Conn) -> None:
        self.registry = PostgresRegistryReader(conn)
        self.follows = PostgresFollowRepository(conn)
        self.requests = PostgresFollowRequestRepository(conn)
