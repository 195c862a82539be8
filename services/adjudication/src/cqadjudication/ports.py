"""Ports (typing.Protocol) the adjudication use cases and consumers depend on. The
PostgreSQL adapters implement them; unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from cqadjudication.domain.events import DomainEvent
from cqadjudication.domain.verification import CertifyStart, FaceResult, FaceSubject
from cqadjudication.domain.violations import Violation, ViolationReport


class ViolationRepository(Protocol):
    """Violations and the registry copy a recording needs, inside one transaction."""

    async def find_vehicle(self, plate_type: str, plate_number: str) -> str | None:
        """The vehicle id of a plate, or None when the registry copy does not have it."""
        ...

    async def find_licence(self, licence_no: str) -> str | None: ...

    async def code_description(self, code: str) -> str | None: ...

    async def add(
        self,
        violation_id: str,
        report: ViolationReport,
        vehicle_id: str,
        licence_id: str | None,
        description_zh: str,
    ) -> bool:
        """Insert; False when (source_system, source_record_id) already exists.

        A decision number already used by another violation is refused with
        ``DECISION_NO_CONFLICT`` (by the insert, or by the unit of work when the database's
        unique constraint decides a race).
        """
        ...

    async def by_source(self, source_system: str, source_record_id: str) -> tuple[Violation, str]:
        """The violation recorded for a source record and the fingerprint it was recorded with."""
        ...

    async def get(self, violation_id: str) -> Violation | None:
        """The violation, or None (also for an id that is not a UUID)."""
        ...

    async def get_many(self, violation_ids: Sequence[str]) -> list[Violation]:
        """The violations among ``violation_ids`` that exist (unknown ids are left out)."""
        ...


class UnitOfWork(Protocol):
    """One transaction: its repositories, the events it records, and ``commit()``.

    Leaving the ``async with`` block without ``commit()`` rolls everything back, events
    included (they reach the outbox only at commit).
    """

    @property
    def violations(self) -> ViolationRepository: ...

    def record(self, event: DomainEvent) -> None: ...

    async def commit(self) -> None: ...


class RegistryCopy(Protocol):
    """Adjudication's copy of the registry (vehicles, licences, violation codes), kept from
    registry events. Upserts by id: a replayed or re-imported record changes nothing new."""

    async def upsert_vehicle(
        self,
        *,
        vehicle_id: str,
        plate_type: str,
        plate_number: str,
        vin: str,
        owner_person_id: str,
    ) -> None: ...

    async def upsert_licence(
        self,
        *,
        licence_id: str,
        person_id: str,
        licence_no: str,
        file_no: str,
        licence_class: str,
        first_issued_on: date | None,
        status: str,
    ) -> None: ...

    async def upsert_violation_code(
        self,
        *,
        code: str,
        description_zh: str,
        points: int,
        fine_min_fen: int,
        fine_max_fen: int,
    ) -> None: ...


class FaceVerifier(Protocol):
    """R-ADJ-8: ``start(person, purpose) -> certify_id + url``, ``result(certify_id)``.

    Adapters: ``alipay`` (the open platform's ``alipay.user.certify.open.*``), ``counter``
    (staff confirmed the identity in person), ``sandbox`` (deterministic, no provider).
    """

    #: "alipay", "counter" or "sandbox": stored with each verification
    name: str

    async def start(self, subject: FaceSubject, *, purpose: str, reference: str) -> CertifyStart:
        """Begin a verification of ``subject``; ``reference`` is our unique id for it (the
        provider's outer order number), ``purpose`` a short text shown to the person."""
        ...

    async def result(self, certify_id: str) -> FaceResult:
        """What the provider says now; raises ``DomainError`` for an id it does not know."""
        ...
