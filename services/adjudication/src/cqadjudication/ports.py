"""Ports (typing.Protocol) the adjudication use cases and consumers depend on. The
PostgreSQL adapters implement them; unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from cqadjudication.domain.alerts import PointsBuyingAlert
from cqadjudication.domain.callers import Caller
from cqadjudication.domain.eligibility import CycleUsage, HandlerLicence
from cqadjudication.domain.events import DomainEvent
from cqadjudication.domain.handlings import Decision, Handling
from cqadjudication.domain.notices import NoticeFacts
from cqadjudication.domain.points import LedgerRow, PointsEntry, RolloverCandidate
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

    async def lock(self, violation_id: str) -> Violation | None:
        """The violation, its row locked until the transaction ends (SELECT ... FOR UPDATE)."""
        ...

    async def owners(self, vehicle_ids: Sequence[str]) -> dict[str, str]:
        """vehicle id -> owner person id, from the registry copy (unknown ids left out)."""
        ...

    async def decide(self, violation_id: str, decision: Decision) -> Violation:
        """Store the decision: the violation becomes ``handled_unpaid`` (R-ADJ-7)."""
        ...

    async def set_disputed(self, violation_id: str, disputed: bool) -> Violation:
        """Mark or clear a dispute (R-ADJ-9)."""
        ...

    async def next_decision_serial(self) -> int:
        """The next decision serial (a database sequence: unique across processes)."""
        ...

    async def decision_no_taken(self, decision_no: str) -> bool:
        """True when a violation already holds ``decision_no`` (e.g. an imported one)."""
        ...


class HandlingRepository(Protocol):
    """Handlings, their verification steps, and the persons copy the face steps need."""

    async def subject(self, person_id: str) -> FaceSubject | None:
        """The named person a face verification checks (registry copy), or None."""
        ...

    async def add(self, handling: Handling) -> None: ...

    async def get(
        self, handling_id: str, handler_person_id: str, *, for_update: bool = False
    ) -> Handling | None:
        """The handling if it exists *and* ``handler_person_id`` started it; None otherwise
        (one query for both, so another's handling and an unknown id answer alike)."""
        ...

    async def save(self, handling: Handling, *, now: datetime) -> None:
        """Write the handling's state, decision and steps (status, times, used)."""
        ...

    async def submitted_for(self, violation_id: str) -> Handling | None:
        """The violation's submitted handling, if any."""
        ...


class PointsLedgerRepository(Protocol):
    """Licences with their points ledger (R-ADJ-5/6, R-X-2)."""

    async def licence_of_person(self, person_id: str) -> HandlerLicence | None:
        """The person's licence (a valid one first) with its ledger row, or None."""
        ...

    async def licence_by_no(self, licence_no: str) -> HandlerLicence | None: ...

    async def licence(self, licence_id: str) -> HandlerLicence | None: ...

    async def lock(self, licence_id: str) -> LedgerRow | None:
        """The ledger row, locked until the transaction ends (SELECT ... FOR UPDATE)."""
        ...

    async def lock_licence(self, licence_id: str) -> tuple[LedgerRow, HandlerLicence] | None:
        """The ledger row, locked like ``lock``, with the licence it belongs to, in one
        round trip; None when there is no ledger row (a licence reads as none then)."""
        ...

    async def apply(self, row: LedgerRow, entry: PointsEntry) -> None:
        """Store the row after ``entry`` and append the entry (the row == sum of entries)."""
        ...

    async def usage(
        self, licence: HandlerLicence, vehicle_ids: Sequence[str]
    ) -> dict[str, CycleUsage]:
        """R-X-2 facts per vehicle for ``licence`` in its current cycle: the other people's
        vehicles it took points for, and the licences each vehicle's points went to."""
        ...


class AlertRepository(Protocol):
    async def add(self, alert: PointsBuyingAlert) -> None:
        """Store an alert; the same case again (kind, licence, vehicle, violation, cycle)
        is kept once."""
        ...

    async def page(
        self, *, limit: int, after: tuple[datetime, str] | None
    ) -> list[PointsBuyingAlert]:
        """Newest first, after the (raised_at, alert_id) key of the previous page."""
        ...


class UnitOfWork(Protocol):
    """One transaction: its repositories, the events it records, and ``commit()``.

    Leaving the ``async with`` block without ``commit()`` rolls everything back, events
    included (they reach the outbox only at commit).
    """

    @property
    def violations(self) -> ViolationRepository: ...

    @property
    def handlings(self) -> HandlingRepository: ...

    @property
    def points(self) -> PointsLedgerRepository: ...

    @property
    def alerts(self) -> AlertRepository: ...

    def record(self, event: DomainEvent) -> None: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True)
class StoredNotice:
    """A decision notice as stored (R-ADJ-7): the PDF and when it was made."""

    decision_no: str
    violation_id: str
    content: bytes
    generated_at: datetime


class NoticeRepository(Protocol):
    """Decision notices and the facts they print (R-ADJ-7, R-JOB-3)."""

    async def get(self, decision_no: str) -> StoredNotice | None: ...

    async def is_decided(self, decision_no: str) -> bool:
        """Whether a violation carries this decision number."""
        ...

    async def due(self, *, after: str | None, limit: int) -> list[str]:
        """Decision numbers after ``after`` (in order) whose notice is not made yet."""
        ...

    async def facts(self, decision_nos: Sequence[str]) -> dict[str, NoticeFacts]:
        """What each decision's notice prints; a decision whose party the registry copy does
        not have yet is left out."""
        ...

    async def add(self, notice: StoredNotice) -> StoredNotice:
        """Store the notice unless one is stored already; the stored one."""
        ...


class RolloverRepository(Protocol):
    """The ledgers the scoring-cycle rollover moves (R-JOB-5)."""

    async def lock_due(
        self, *, today: date, after: str | None, limit: int
    ) -> list[RolloverCandidate]:
        """Ledgers whose cycle ended before ``today``, with licence ids after ``after``, in
        licence-id order, their rows locked until the transaction ends."""
        ...

    async def unpaid_since(self, licence_ids: Sequence[str]) -> dict[str, date]:
        """licence id -> the earliest decision date among the decided, unpaid fines booked
        on it (licences whose fines are all paid are left out)."""
        ...

    async def roll(self, row: LedgerRow, entries: Sequence[PointsEntry], *, now: datetime) -> None:
        """Write the rolled ledger row and append its entries."""
        ...


class JobsUnitOfWork(Protocol):
    """One transaction of the nightly jobs and the notice reads (see ``UnitOfWork``)."""

    @property
    def notices(self) -> NoticeRepository: ...

    @property
    def rollover(self) -> RolloverRepository: ...

    def record(self, event: DomainEvent) -> None: ...

    async def commit(self) -> None: ...


#: A fresh unit of work each call (``async with uows() as uow``).
JobsUnitsOfWork = Callable[[], AbstractAsyncContextManager[JobsUnitOfWork]]


class NoticeRenderer(Protocol):
    """Renders a decision notice to a printable document (the PDF adapter)."""

    content_type: str

    async def render(self, facts: NoticeFacts) -> bytes:
        """The document's bytes; the same facts always give the same bytes."""
        ...


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

    async def upsert_person(self, *, person_id: str, name: str, id_number: str) -> None: ...

    async def open_ledger(
        self, *, licence_id: str, points: int, first_issued_on: date, now: datetime
    ) -> None:
        """The registry's points for the licence: open its ledger on first sight; a later
        import with different points is a change by another channel (R-ADJ-6)."""
        ...

    async def upsert_violation_code(
        self,
        *,
        code: str,
        description_zh: str,
        points: int,
        fine_min_fen: int,
        fine_max_fen: int,
    ) -> None: ...


class PaymentFacts(Protocol):
    """The payments that settled violations' fines (from payment events, R-Q-5, R-PAY-5)."""

    async def fine_paid(
        self, *, payment_id: str, violation_id: str, decision_no: str, paid_at: datetime
    ) -> None:
        """Record a payment; the violation is closed (``paid``)."""
        ...

    async def payment_refunded(
        self, *, payment_id: str, violation_id: str, decision_no: str, refunded_at: datetime
    ) -> None:
        """Record a refund; the violation is open again unless another payment stands."""
        ...


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


class Relations(Protocol):
    """R-Q-1 facts the query service keeps: how the caller relates to each vehicle
    ("own", "followed" or "proven"; a vehicle left out is not related)."""

    async def relations(self, caller: Caller, vehicle_ids: Sequence[str]) -> dict[str, str]:
        """Raises ``DomainError(HANDLING_RELATIONS_UNAVAILABLE)`` when it cannot ask."""
        ...
