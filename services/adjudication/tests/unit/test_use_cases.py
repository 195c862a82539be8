"""Adjudication use cases on in-memory fakes (cosmicpython): a FakeUnitOfWork holding a
FakeViolationRepository, a ``committed`` flag and the events recorded; no database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cqadjudication.domain.events import DomainEvent, ViolationRecorded
from cqadjudication.domain.violations import (
    RecordingWindow,
    Violation,
    ViolationReport,
    validate_report,
)
from cqadjudication.service_layer.handling_eligibility import MAX_IDS, handling_eligibility
from cqadjudication.service_layer.record_violation import record_violation
from cqcommon.clock import FixedClock
from cqcommon.errors import DECISION_NO_CONFLICT, DomainError

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PLATE = ("02", "渝A12345")
VEHICLE_ID = "0b6f1f0e-0000-4000-8000-000000000001"
LICENCE_NO = "500101199001011237"
LICENCE_ID = "0b6f1f0e-0000-4000-8000-000000000002"
CODES = {"1345": "机动车违反禁令标志指示的", "1636": "机动车超过规定时速50%以上的"}


class FakeViolationRepository:
    """In memory; keeps the database's promises: one row per source record, one violation
    per decision number (DECISION_NO_CONFLICT, as the unique constraint answers)."""

    def __init__(
        self,
        *,
        vehicles: dict[tuple[str, str], str] | None = None,
        licences: dict[str, str] | None = None,
        codes: dict[str, str] | None = None,
    ) -> None:
        self.vehicles = vehicles if vehicles is not None else {PLATE: VEHICLE_ID}
        self.licences = licences if licences is not None else {LICENCE_NO: LICENCE_ID}
        self.codes = codes if codes is not None else dict(CODES)
        self.rows: dict[str, tuple[Violation, str]] = {}

    async def find_vehicle(self, plate_type: str, plate_number: str) -> str | None:
        return self.vehicles.get((plate_type, plate_number))

    async def find_licence(self, licence_no: str) -> str | None:
        return self.licences.get(licence_no)

    async def code_description(self, code: str) -> str | None:
        return self.codes.get(code)

    async def add(
        self,
        violation_id: str,
        report: ViolationReport,
        vehicle_id: str,
        licence_id: str | None,
        description_zh: str,
    ) -> bool:
        for existing, _ in self.rows.values():
            if (existing.source_system, existing.source_record_id) == (
                report.source_system,
                report.source_record_id,
            ):
                return False
        if report.decision_no and any(
            v.decision_no == report.decision_no for v, _ in self.rows.values()
        ):
            raise DomainError(DECISION_NO_CONFLICT, details={"field": "decision_no"})
        violation = Violation(
            violation_id=violation_id,
            source_system=report.source_system,
            source_record_id=report.source_record_id,
            vehicle_id=vehicle_id,
            plate_type=report.plate_type,
            plate_number=report.plate_number,
            licence_id=licence_id,
            violation_code=report.violation_code,
            description_zh=description_zh,
            occurred_at=report.occurred_at,
            place=report.place,
            fine_fen=report.fine_fen,
            points=report.points,
            source=report.source,
            procedure=report.procedure,
            status=report.initial_status,
            decision_no=report.decision_no,
            decision_date=report.decision_date,
            disputed=False,
        )
        self.rows[violation_id] = (violation, report.fingerprint())
        return True

    async def by_source(self, source_system: str, source_record_id: str) -> tuple[Violation, str]:
        for violation, fingerprint in self.rows.values():
            if (violation.source_system, violation.source_record_id) == (
                source_system,
                source_record_id,
            ):
                return violation, fingerprint
        raise LookupError((source_system, source_record_id))

    async def get(self, violation_id: str) -> Violation | None:
        row = self.rows.get(violation_id)
        return row[0] if row else None

    async def get_many(self, violation_ids: Sequence[str]) -> list[Violation]:
        return [self.rows[vid][0] for vid in violation_ids if vid in self.rows]


class FakeUnitOfWork:
    """Events reach ``published`` only at commit, like the outbox; nothing is rolled back
    in memory, so tests assert on ``committed`` and ``published``."""

    def __init__(self, violations: FakeViolationRepository | None = None) -> None:
        self.violations = violations or FakeViolationRepository()
        self.committed = False
        self.pending: list[DomainEvent] = []
        self.published: list[DomainEvent] = []

    def record(self, event: DomainEvent) -> None:
        self.pending.append(event)

    async def commit(self) -> None:
        self.published.extend(self.pending)
        self.pending.clear()
        self.committed = True


def report(**overrides: Any) -> ViolationReport:
    args: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": "cam-1",
        "plate_type": PLATE[0],
        "plate_number": PLATE[1],
        "licence_no": None,
        "violation_code": "1345",
        "occurred_at": datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
        "decision_no": None,
        "decision_date": None,
        "clock": FixedClock(NOW),
        "window": RecordingWindow(timedelta(seconds=300), date(2000, 1, 1)),
    }
    return validate_report(**(args | overrides))


# -- record_violation ---------------------------------------------------------------------
async def test_a_new_record_is_stored_published_once_and_committed() -> None:
    uow = FakeUnitOfWork()
    result = await record_violation(uow=uow, report=report())
    assert result.created
    assert uow.committed
    assert uow.published == [ViolationRecorded(result.violation)]
    stored = await uow.violations.get(result.violation.violation_id)
    assert stored == result.violation
    assert (stored.status, stored.points, stored.vehicle_id) == ("unhandled", 3, VEHICLE_ID)


async def test_the_same_source_record_again_returns_the_first_without_a_second_event() -> None:
    """Idempotency: (source_system, source_record_id) is recorded once."""
    uow = FakeUnitOfWork()
    first = await record_violation(uow=uow, report=report())
    replay_uow = FakeUnitOfWork(uow.violations)
    again = await record_violation(uow=replay_uow, report=report())
    assert not again.created
    assert again.violation == first.violation
    assert replay_uow.published == [] and replay_uow.pending == []
    assert len(uow.violations.rows) == 1


async def test_a_conflicting_resend_is_refused_and_not_committed() -> None:
    uow = FakeUnitOfWork()
    first = await record_violation(uow=uow, report=report())
    resend_uow = FakeUnitOfWork(uow.violations)
    with pytest.raises(DomainError) as err:
        await record_violation(uow=resend_uow, report=report(fine_fen=10_000))
    assert err.value.code == "SOURCE_RECORD_CONFLICT"
    assert err.value.details == {"violation_id": first.violation.violation_id}
    assert not resend_uow.committed
    assert resend_uow.published == [] and resend_uow.pending == []


async def test_a_decision_number_used_by_another_violation_is_a_conflict() -> None:
    """R-ADJ-7: a decision number identifies one violation; a second record with it is 409."""
    decided = {"source": "on_site", "decision_no": "5001129000000001"}
    uow = FakeUnitOfWork()
    await record_violation(uow=uow, report=report(**decided, decision_date=date(2026, 11, 2)))
    other = FakeUnitOfWork(uow.violations)
    with pytest.raises(DomainError) as err:
        await record_violation(
            uow=other,
            report=report(**decided, source_record_id="cam-2", decision_date=date(2026, 11, 3)),
        )
    assert err.value.code == "DECISION_NO_CONFLICT"
    assert not other.committed and other.pending == []
    assert len(uow.violations.rows) == 1


@pytest.mark.parametrize(
    ("repo", "overrides", "code"),
    [
        (FakeViolationRepository(vehicles={}), {}, "VEHICLE_NOT_FOUND"),
        (FakeViolationRepository(), {"licence_no": "500101199001011245"}, "LICENCE_NOT_FOUND"),
        (FakeViolationRepository(codes={}), {}, "UNKNOWN_VIOLATION_CODE"),
    ],
    ids=["unknown-plate", "unknown-licence", "uncatalogued-code"],
)
async def test_unknown_plate_licence_or_code_is_refused_without_a_write(
    repo: FakeViolationRepository, overrides: dict[str, Any], code: str
) -> None:
    """R-ERR-1: unknown ids get a stable code; nothing is stored or published."""
    uow = FakeUnitOfWork(repo)
    with pytest.raises(DomainError) as err:
        await record_violation(uow=uow, report=report(**overrides))
    assert err.value.code == code
    assert not uow.committed and uow.pending == [] and repo.rows == {}


async def test_a_known_licence_is_linked() -> None:
    uow = FakeUnitOfWork()
    result = await record_violation(uow=uow, report=report(licence_no=LICENCE_NO))
    assert result.violation.licence_id == LICENCE_ID


# -- handling_eligibility -----------------------------------------------------------------
async def test_eligibility_answers_every_id_and_unknown_ids_like_undetermined_ones() -> None:
    """R-Q-1 spirit: an id adjudication does not know gets the same answer as an eligible-
    looking record, so the answer does not tell which ids exist."""
    uow = FakeUnitOfWork()
    open_case = await record_violation(uow=uow, report=report())
    counter_case = await record_violation(
        uow=FakeUnitOfWork(uow.violations),
        report=report(source_record_id="SBX-ZW-03", procedure="general", fine_fen=50_000),
    )
    made_up = "7f1d4c1e-0000-4000-8000-000000000000"
    ids = [open_case.violation.violation_id, made_up, counter_case.violation.violation_id]
    answers = await handling_eligibility(uow=FakeUnitOfWork(uow.violations), violation_ids=ids)
    assert list(answers) == ids
    assert answers[made_up] == answers[open_case.violation.violation_id]
    assert answers[made_up].availability == "unknown"
    assert answers[made_up].reason.code == "ELIGIBILITY_NOT_AVAILABLE"
    refused = answers[counter_case.violation.violation_id]
    assert (refused.availability, refused.route) == ("refused", "counter")
    assert refused.reason.code == "GENERAL_PROCEDURE_COUNTER_ONLY"


async def test_eligibility_is_asked_about_a_bounded_number_of_ids() -> None:
    ids = [f"7f1d4c1e-0000-4000-8000-{n:012d}" for n in range(MAX_IDS + 1)]
    with pytest.raises(DomainError) as err:
        await handling_eligibility(uow=FakeUnitOfWork(), violation_ids=ids)
    assert err.value.code == "TOO_MANY_VIOLATION_IDS"
    # repeats are one question
    answers = await handling_eligibility(uow=FakeUnitOfWork(), violation_ids=ids[:1] * 500)
    assert list(answers) == ids[:1]
