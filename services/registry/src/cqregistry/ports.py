"""Ports (typing.Protocol) the registry's use cases (the import, the sandbox roster's load
record) depend on. The PostgreSQL adapters and the protobuf codec (``entrypoints.mappers``)
implement them; unit tests use in-memory fakes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cqregistry.domain.events import RecordRegistered
from cqregistry.domain.imports import Entry, Kind, StoredForm, StoredRecord


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


class RecordCodec(Protocol):
    """How a record is stored: the bytes of the event it publishes, and their hash.

    Must be deterministic (the same entry, id and person id give the same bytes), since an
    unchanged record is recognised by its hash and publishes nothing.
    """

    def stored_form(self, entry: Entry, record_id: str, person_id: str | None) -> StoredForm:
        """The stored form of ``entry`` under ``record_id``; ``person_id`` is the id of the
        vehicle's owner or the licence's holder (None for people and codes)."""
        ...


class RegistryUnitOfWork(Protocol):
    """One transaction: the repository, the events to publish with it, and its commit."""

    @property
    def records(self) -> MasterRecordRepository: ...

    def record(self, event: RecordRegistered) -> None:
        """Queue an event for the outbox of this same transaction."""
        ...

    async def commit(self) -> None: ...


class SandboxRosterLog(Protocol):
    """The completed sandbox roster loads (R-SBX-1), newest last."""

    async def add(self, *, records: int, violations: int, follows: int) -> datetime:
        """Record a completed load; returns when it was recorded."""
        ...

    async def last_loaded_at(self) -> datetime | None:
        """When the last completed load was recorded; None when none was."""
        ...
