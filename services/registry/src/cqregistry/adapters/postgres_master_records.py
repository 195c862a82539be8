"""PostgreSQL adapter of the registry's ports: ``master_records`` (one row per record,
with its natural key, its assigned id, its stored event and that event's hash) and the
unit of work around ``cqcommon.db.UnitOfWork`` (the change and its outbox rows commit
together).

The encoder (domain event -> protobuf envelope) is passed in by the entrypoint that owns
the wire format, so this adapter imports no mapper."""

from __future__ import annotations

from collections.abc import Callable

from cqcommon.db import Conn, UnitOfWork
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

from cqregistry.domain.events import RecordRegistered
from cqregistry.domain.imports import Kind, StoredRecord

EventEncoder = Callable[[RecordRegistered], EventEnvelope]


class PostgresMasterRecordRepository:
    """:class:`cqregistry.ports.MasterRecordRepository` on one connection (one transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def find(self, kind: Kind, natural_key: str) -> StoredRecord | None:
        cur = await self.conn.execute(
            "SELECT record_id, content_hash FROM master_records"
            " WHERE kind = %s AND natural_key = %s",
            (kind, natural_key),
        )
        row = await cur.fetchone()
        return None if row is None else StoredRecord(str(row[0]), str(row[1]))

    async def natural_key_of(self, kind: Kind, record_id: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT natural_key FROM master_records WHERE kind = %s AND record_id = %s",
            (kind, record_id),
        )
        row = await cur.fetchone()
        # a row from before natural keys has none: it still holds the id
        return None if row is None else str(row[0] or "")

    async def add(
        self, kind: Kind, natural_key: str, record_id: str, content_hash: str, payload: bytes
    ) -> bool:
        # DO NOTHING on either unique key: a concurrent import that got there first is
        # reported to the use case, not turned into a database error
        cur = await self.conn.execute(
            "INSERT INTO master_records (kind, natural_key, record_id, content_hash, payload)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (kind, natural_key, record_id, content_hash, payload),
        )
        return cur.rowcount == 1

    async def update(self, kind: Kind, record_id: str, content_hash: str, payload: bytes) -> None:
        await self.conn.execute(
            "UPDATE master_records SET content_hash = %s, payload = %s, imported_at = now()"
            " WHERE kind = %s AND record_id = %s",
            (content_hash, payload, kind, record_id),
        )


class PostgresRegistryUnitOfWork:
    """:class:`cqregistry.ports.RegistryUnitOfWork` over the service's database unit of work."""

    def __init__(self, uow: UnitOfWork, encode: EventEncoder) -> None:
        self._uow = uow
        self._encode = encode
        self.records = PostgresMasterRecordRepository(uow.conn)

    def record(self, event: RecordRegistered) -> None:
        self._uow.record(self._encode(event))

    async def commit(self) -> None:
        await self._uow.commit()
