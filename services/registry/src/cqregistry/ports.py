"""Ports (typing.Protocol) the registry's import use case depends on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cqregistry.domain.imports import Kind, StoredRecord

if TYPE_CHECKING:
    from cqtraffic.events.v1.envelope_pb2 import EventEnvelope


class MasterRecordRepository(Protocol):
    """The registry's records, each under its natural key and its assigned id."""

    async def find(self, kind: Kind, natural_key: str) -> StoredRecord | None:
        """The record held under ``natural_key``, if any."""
        ...

    async def natural_key_of(self, kind: Kind, record_id: str) -> str | None:
        """The natural key that has ``record_id``, if any (to check a pinned id is free)."""
        ...

    async def add(
        self, kind: Kind, natural_key: str, record_id: str, content_hash: str, payload: bytes
    ) -> bool:
        """Store a new record; False when its natural key or id was taken meanwhile."""
        ...

    async def update(self, kind: Kind, record_id: str, content_hash: str, payload: bytes) -> None:
        """Replace the content of an existing record."""
        ...


class RegistryUnitOfWork(Protocol):
    """One transaction: the repository, the events to publish with it, and its commit."""

    @property
    def records(self) -> MasterRecordRepository: ...

    def record(self, envelope: EventEnvelope) -> None:
        """Queue an event for the outbox of this same transaction."""
        ...

    async def commit(self) -> None: ...
