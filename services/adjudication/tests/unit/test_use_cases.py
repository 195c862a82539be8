"""Adjudication use cases on in-memory fakes (cosmicpython): a FakeUnitOfWork holding fake
repositories (violations, handlings, points ledger, alerts), a ``committed`` flag and the
events recorded; no database. The handling use cases (R-ADJ-1..9, R-X-2) are in
``test_handling_use_cases.py`` territory below the recording tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from cqadjudication.domain.alerts import PointsBuyingAlert
from cqadjudication.domain.callers import Caller
from cqadjudication.domain.eligibility import CycleUsage, EligibilityRules, HandlerLicence
from cqadjudication.domain.events import DomainEvent, ViolationRecorded
from cqadjudication.domain.handlings import Decision, Handling
from cqadjudication.domain.points import LedgerRow, PointsEntry
from cqadjudication.domain.verification import CertifyStart, FaceResult, FaceSubject
from cqadjudication.domain.violations import (
    RecordingWindow,
    Violation,
    ViolationReport,
    validate_report,
)
from cqadjudication.entrypoints.mappers import given_relations_from_request
from cqadjudication.service_layer.config import HandlingConfig
from cqadjudication.service_layer.handling_eligibility import MAX_IDS, handling_eligibility
from cqadjudication.service_layer.record_violation import record_violation
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DECISION_NO_CONFLICT, HANDLING_RELATIONS_UNAVAILABLE, DomainError
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PLATE = ("02", "渝A12345")
VEHICLE_ID = "0b6f1f0e-0000-4000-8000-000000000001"
LICENCE_NO = "500101199001011237"
LICENCE_ID = "0b6f1f0e-0000-4000-8000-000000000002"
CODES = {
    "1345": "机动车违反禁令标志指示的",
    "1636": "机动车超过规定时速50%以上的",
    "1039": "机动车违反规定停放的",
}
OWNER = "0b6f1f0e-0000-4000-8000-0000000000a1"


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
        self.owners_by_vehicle: dict[str, str] = {VEHICLE_ID: OWNER}
        self.serial = 0

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

    # -- handling support: owners from the registry copy, decisions, disputes, serials
    async def lock(self, violation_id: str) -> Violation | None:
        return await self.get(violation_id)

    async def owners(self, vehicle_ids: Sequence[str]) -> dict[str, str]:
        return {v: self.owners_by_vehicle[v] for v in vehicle_ids if v in self.owners_by_vehicle}

    def _replace(self, violation_id: str, **changes: Any) -> Violation:
        violation, fingerprint = self.rows[violation_id]
        changed = dataclasses.replace(violation, **changes)
        self.rows[violation_id] = (changed, fingerprint)
        return changed

    async def decide(self, violation_id: str, decision: Decision) -> Violation:
        if any(v.decision_no == decision.decision_no for v, _ in self.rows.values()):
            raise DomainError(DECISION_NO_CONFLICT, details={"field": "decision_no"})
        return self._replace(
            violation_id,
            status="handled_unpaid",
            decision_no=decision.decision_no,
            decision_date=decision.decision_date,
        )

    async def set_disputed(self, violation_id: str, disputed: bool) -> Violation:
        return self._replace(violation_id, disputed=disputed)

    async def next_decision_serial(self) -> int:
        self.serial += 1
        return self.serial

    async def decision_no_taken(self, decision_no: str) -> bool:
        return any(v.decision_no == decision_no for v, _ in self.rows.values())


class FakeHandlingRepository:
    """Keeps the database's promise: one submitted handling per violation."""

    def __init__(self) -> None:
        self.persons: dict[str, FaceSubject] = {}
        self.rows: dict[str, Handling] = {}

    async def subject(self, person_id: str) -> FaceSubject | None:
        return self.persons.get(person_id)

    async def add(self, handling: Handling) -> None:
        self.rows[handling.handling_id] = handling

    async def get(
        self, handling_id: str, handler_person_id: str, *, for_update: bool = False
    ) -> Handling | None:
        h = self.rows.get(handling_id)
        return h if h is not None and h.handler_person_id == handler_person_id else None

    async def save(self, handling: Handling, *, now: datetime) -> None:
        self.rows[handling.handling_id] = handling

    async def submitted_for(self, violation_id: str) -> Handling | None:
        for h in self.rows.values():
            if h.violation_id == violation_id and h.state == "submitted":
                return h
        return None


class FakePointsLedger:
    """Licences with their ledger rows and entries; usage computed from the entries like
    the SQL does (other people's vehicles; distinct licences per vehicle, this cycle)."""

    def __init__(self, violations: FakeViolationRepository) -> None:
        self.violations = violations
        #: licence_id -> (licence_no, person_id, class, status)
        self.licences: dict[str, tuple[str, str, str, str]] = {}
        self.rows: dict[str, LedgerRow] = {}
        self.entries: list[PointsEntry] = []

    def _licence(self, licence_id: str) -> HandlerLicence | None:
        if licence_id not in self.licences or licence_id not in self.rows:
            return None
        _, person, cls, status = self.licences[licence_id]
        r = self.rows[licence_id]
        return HandlerLicence(
            licence_id,
            person,
            cls,
            status,
            r.points,
            r.cycle_start,
            r.cycle_end,
            r.external_change_at,
        )

    async def licence_of_person(self, person_id: str) -> HandlerLicence | None:
        for lid, (_, person, _, _) in self.licences.items():
            if person == person_id:
                return self._licence(lid)
        return None

    async def licence_by_no(self, licence_no: str) -> HandlerLicence | None:
        for lid, (number, _, _, _) in self.licences.items():
            if number == licence_no:
                return self._licence(lid)
        return None

    async def licence(self, licence_id: str) -> HandlerLicence | None:
        return self._licence(licence_id)

    async def lock(self, licence_id: str) -> LedgerRow | None:
        return self.rows.get(licence_id)

    async def lock_licence(self, licence_id: str) -> tuple[LedgerRow, HandlerLicence] | None:
        licence = self._licence(licence_id)
        return (self.rows[licence_id], licence) if licence is not None else None

    async def apply(self, row: LedgerRow, entry: PointsEntry) -> None:
        self.rows[row.licence_id] = row
        self.entries.append(entry)

    async def usage(
        self, licence: HandlerLicence, vehicle_ids: Sequence[str]
    ) -> dict[str, CycleUsage]:
        start = datetime.combine(licence.cycle_start, time(), SHANGHAI)
        vehicle_of = {vid: v.vehicle_id for vid, (v, _) in self.violations.rows.items()}
        booked = [e for e in self.entries if e.violation_id and e.delta > 0 and e.at >= start]
        owners = self.violations.owners_by_vehicle
        taken = frozenset(
            vehicle_of[e.violation_id]
            for e in booked
            if e.licence_id == licence.licence_id
            and e.violation_id
            and owners.get(vehicle_of[e.violation_id]) != licence.person_id
        )
        return {
            vid: CycleUsage(
                taken,
                frozenset(
                    e.licence_id
                    for e in booked
                    if e.violation_id and vehicle_of[e.violation_id] == vid
                ),
            )
            for vid in vehicle_ids
        }


class FakeAlertRepository:
    def __init__(self) -> None:
        self.rows: list[PointsBuyingAlert] = []

    async def add(self, alert: PointsBuyingAlert) -> None:
        key = (alert.kind, alert.licence_id, alert.vehicle_id, alert.violation_id)
        if all((a.kind, a.licence_id, a.vehicle_id, a.violation_id) != key for a in self.rows):
            self.rows.append(alert)

    async def page(
        self, *, limit: int, after: tuple[datetime, str] | None
    ) -> list[PointsBuyingAlert]:
        ordered = sorted(self.rows, key=lambda a: (a.raised_at, a.alert_id), reverse=True)
        if after is not None:
            ordered = [a for a in ordered if (a.raised_at, a.alert_id) < after]
        return ordered[:limit]


class FakeUnitOfWork:
    """Events reach ``published`` only at commit, like the outbox; nothing is rolled back
    in memory, so tests assert on ``committed`` and ``published``. ``world`` shares the
    repositories of an earlier unit of work (the same database)."""

    def __init__(
        self,
        violations: FakeViolationRepository | None = None,
        *,
        world: FakeUnitOfWork | None = None,
    ) -> None:
        self.violations: FakeViolationRepository
        self.handlings: FakeHandlingRepository
        self.points: FakePointsLedger
        self.alerts: FakeAlertRepository
        if world is not None:
            self.violations = world.violations
            self.handlings = world.handlings
            self.points = world.points
            self.alerts = world.alerts
        else:
            self.violations = violations or FakeViolationRepository()
            self.handlings = FakeHandlingRepository()
            self.points = FakePointsLedger(self.violations)
            self.alerts = FakeAlertRepository()
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


# == handlings (R-ADJ-1..9, R-X-2) =========================================================
from cqadjudication.service_layer.alerts import list_points_buying_alerts  # noqa: E402
from cqadjudication.service_layer.counter import handle_at_counter, record_decision  # noqa: E402
from cqadjudication.service_layer.disputes import (  # noqa: E402
    dispute_violation,
    undispute_violation,
)
from cqadjudication.service_layer.handlings import (  # noqa: E402
    complete_verification,
    get_handling,
    start_handling,
    submit_handling,
)

FRIEND = "0b6f1f0e-0000-4000-8000-0000000000b1"
STRANGER = "0b6f1f0e-0000-4000-8000-0000000000c1"
OWNER_LICENCE = "0b6f1f0e-0000-4000-8000-0000000000a2"
FRIEND_LICENCE = "0b6f1f0e-0000-4000-8000-0000000000b2"
FRIEND_LICENCE_NO = "500101199202021234"
CONFIG = HandlingConfig(EligibilityRules(), timedelta(minutes=10), "500000")
ME = Caller(user_id="u-owner", person_id=OWNER)
FRIEND_CALLER = Caller(user_id="u-friend", person_id=FRIEND)
CLERK = Caller(staff_id="clerk01", staff_role="clerk")
CYCLE = (date(2026, 3, 1), date(2027, 2, 28))


class FakeRelations:
    """The query service's R-Q-1 answers; ``fail`` makes it unreachable."""

    def __init__(self, answers: dict[str, str] | None = None, *, fail: bool = False) -> None:
        self.answers = answers or {}
        self.fail = fail
        self.asked: list[list[str]] = []

    async def relations(self, caller: Caller, vehicle_ids: Sequence[str]) -> dict[str, str]:
        self.asked.append(list(vehicle_ids))
        if self.fail:
            raise DomainError(HANDLING_RELATIONS_UNAVAILABLE)
        return {v: r for v, r in self.answers.items() if v in vehicle_ids}


class FakeFaceVerifier:
    """Answers per certify id (``pending`` until told); the certify id names the reference."""

    name = "fake"

    def __init__(self) -> None:
        self.answers: dict[str, FaceResult] = {}
        self.started: list[FaceSubject] = []

    async def start(self, subject: FaceSubject, *, purpose: str, reference: str) -> CertifyStart:
        self.started.append(subject)
        return CertifyStart(f"cert-{reference}", f"https://face.example/{reference}")

    async def result(self, certify_id: str) -> FaceResult:
        return self.answers.get(certify_id, "pending")


def world(*, friend_points: int = 0, friend_class: str = "C1") -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    uow.handlings.persons = {
        OWNER: FaceSubject(OWNER, "张伟", "500101198001011234"),
        FRIEND: FaceSubject(FRIEND, "刘洋", FRIEND_LICENCE_NO),
    }
    ledger = uow.points
    ledger.licences = {
        OWNER_LICENCE: (LICENCE_NO, OWNER, "C1", "valid"),
        FRIEND_LICENCE: (FRIEND_LICENCE_NO, FRIEND, friend_class, "valid"),
    }
    ledger.rows = {
        OWNER_LICENCE: LedgerRow(OWNER_LICENCE, 0, *CYCLE, None),
        FRIEND_LICENCE: LedgerRow(FRIEND_LICENCE, friend_points, *CYCLE, None),
    }
    return uow


async def recorded(uow: FakeUnitOfWork, record_id: str, **overrides: Any) -> Violation:
    result = await record_violation(
        uow=FakeUnitOfWork(world=uow), report=report(source_record_id=record_id, **overrides)
    )
    return result.violation


def fresh(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    return FakeUnitOfWork(world=uow)


async def verified(
    uow: FakeUnitOfWork, face: FakeFaceVerifier, caller: Caller, handling: Handling
) -> Handling:
    for step in handling.steps:
        face.answers[step.certify_id] = "passed"
        handling = await complete_verification(
            uow=fresh(uow),
            verifiers={face.name: face},
            caller=caller,
            handling_id=handling.handling_id,
            step=step.step,
            config=CONFIG,
            now=NOW,
        )
    return handling


async def start(
    uow: FakeUnitOfWork,
    caller: Caller,
    violation: Violation,
    *,
    face: FakeFaceVerifier | None = None,
    relations: FakeRelations | None = None,
) -> Handling:
    return await start_handling(
        uow=fresh(uow),
        relations=relations or FakeRelations(),
        verifier=face or FakeFaceVerifier(),
        caller=caller,
        violation_id=violation.violation_id,
        config=CONFIG,
        now=NOW,
    )


# -- eligibility hints --------------------------------------------------------------------
async def test_hints_unknown_ids_and_callers_without_a_person_answer_unknown() -> None:
    """R-Q-3: an unknown id answers like an undeterminable one (existence is not revealed)."""
    uow = world()
    v = await recorded(uow, "cam-1")
    made_up = "7f1d4c1e-0000-4000-8000-000000000000"
    args: dict[str, Any] = {
        "uow": fresh(uow),
        "relations": FakeRelations(),
        "given_relations": {},
        "rules": CONFIG.rules,
        "now": NOW,
    }
    answers = await handling_eligibility(**args, caller=ME, violation_ids=[v.violation_id, made_up])
    assert list(answers) == [v.violation_id, made_up]
    assert (answers[v.violation_id].availability, answers[v.violation_id].route) == (
        "allowed",
        "handler",
    )
    assert answers[made_up].availability == "unknown"
    assert answers[made_up].reasons[0].code == "ELIGIBILITY_NOT_AVAILABLE"
    # no person to assess: the record-level answer (unknown here, like a made-up id)
    staff = await handling_eligibility(**args, caller=CLERK, violation_ids=[v.violation_id])
    assert staff[v.violation_id] == answers[made_up]


async def test_hints_about_decided_violations_do_not_read_the_licence_or_its_usage() -> None:
    """R-Q-3: a handled or paid violation's answer is its record's, so a page or detail of
    decided ones is answered without the caller's licence and R-X-2 usage (two statements
    instead of five on every read after a handling or a payment); an open one on the page
    still gets them, and the answers are those of the full assessment."""
    uow = world()
    paid = await recorded(uow, "cam-paid")
    handled = await recorded(uow, "cam-handled")
    still_open = await recorded(uow, "cam-open")
    rows = uow.violations.rows
    rows[paid.violation_id] = (dataclasses.replace(paid, status="paid"), rows[paid.violation_id][1])
    rows[handled.violation_id] = (
        dataclasses.replace(handled, status="handled_unpaid"),
        rows[handled.violation_id][1],
    )
    asked: list[str] = []
    points = uow.points
    licence_of_person, usage = points.licence_of_person, points.usage

    async def spy_licence(person_id: str) -> HandlerLicence | None:
        asked.append("licence")
        return await licence_of_person(person_id)

    async def spy_usage(
        licence: HandlerLicence, vehicle_ids: Sequence[str]
    ) -> dict[str, CycleUsage]:
        asked.append("usage")
        return await usage(licence, vehicle_ids)

    points.licence_of_person = spy_licence  # type: ignore[method-assign]
    points.usage = spy_usage  # type: ignore[method-assign]
    args: dict[str, Any] = {
        "relations": FakeRelations(),
        "given_relations": {},
        "rules": CONFIG.rules,
        "now": NOW,
        "caller": ME,
    }
    decided = await handling_eligibility(
        **args, uow=fresh(uow), violation_ids=[paid.violation_id, handled.violation_id]
    )
    assert asked == []
    assert [a.reasons[0].code for a in decided.values()] == ["ALREADY_PAID", "ALREADY_DECIDED"]
    assert decided[handled.violation_id].route == "payment"
    # the same answer for a caller who is no registered person (cqcommon.decided: the query
    # service gives it from its read model without asking)
    nobody = await handling_eligibility(
        **(args | {"caller": CLERK}),
        uow=fresh(uow),
        violation_ids=[paid.violation_id, handled.violation_id],
    )
    assert nobody == decided
    mixed = await handling_eligibility(
        **args, uow=fresh(uow), violation_ids=[paid.violation_id, still_open.violation_id]
    )
    # the owner's own open violation: the licence, but no R-X-2 usage (own vehicle)
    assert asked == ["licence"]
    assert mixed[paid.violation_id] == decided[paid.violation_id]
    assert (mixed[still_open.violation_id].availability, mixed[still_open.violation_id].route) == (
        "allowed",
        "handler",
    )
    asked.clear()
    friend = await handling_eligibility(
        **(args | {"caller": FRIEND_CALLER, "given_relations": {VEHICLE_ID: "followed"}}),
        uow=fresh(uow),
        violation_ids=[paid.violation_id, still_open.violation_id],
    )
    # a follower's point-bearing one on another's vehicle: R-X-2 needs the usage
    assert asked == ["licence", "usage"]
    assert friend[still_open.violation_id].route == "owner_then_handler"


async def test_hints_use_the_relations_sent_along_or_ask_once_r_adj_4() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    ask = FakeRelations({VEHICLE_ID: "followed"})
    common_args: dict[str, Any] = {
        "uow": fresh(uow),
        "caller": FRIEND_CALLER,
        "violation_ids": [v.violation_id] * 3,
        "rules": CONFIG.rules,
        "now": NOW,
    }
    given = await handling_eligibility(
        **common_args, relations=ask, given_relations={VEHICLE_ID: "proven"}
    )
    assert ask.asked == []
    assert given[v.violation_id].route == "owner_then_handler"
    asked = await handling_eligibility(**common_args, relations=ask, given_relations=None)
    assert ask.asked == [[VEHICLE_ID]]
    assert asked[v.violation_id].route == "owner_then_handler"
    down = await handling_eligibility(
        **common_args, relations=FakeRelations(fail=True), given_relations=None
    )
    assert down[v.violation_id].availability == "unknown"


async def test_hints_with_relations_given_and_an_empty_map_ask_nobody_r_adj_4() -> None:
    """R-ADJ-4: the query service marks its map complete (relations_given); an empty one
    means the caller relates to none of the page's vehicles, so adjudication does not call
    the query service back, and the vehicle counts as not related."""
    uow = world()
    v = await recorded(uow, "cam-1")
    ask = FakeRelations({VEHICLE_ID: "followed"})
    request = pb.GetHandlingEligibilityRequest(
        violation_ids=[v.violation_id], vehicle_relations={}, relations_given=True
    )
    answers = await handling_eligibility(
        uow=fresh(uow),
        relations=ask,
        caller=FRIEND_CALLER,
        violation_ids=list(request.violation_ids),
        given_relations=given_relations_from_request(request),
        rules=CONFIG.rules,
        now=NOW,
    )
    assert ask.asked == []
    assert answers[v.violation_id].availability == "refused"
    assert [r.code for r in answers[v.violation_id].reasons] == ["NOT_RELATED_TO_VEHICLE"]


async def test_hints_are_asked_about_a_bounded_number_of_ids() -> None:
    ids = [f"7f1d4c1e-0000-4000-8000-{n:012d}" for n in range(MAX_IDS + 1)]
    with pytest.raises(DomainError) as err:
        await handling_eligibility(
            uow=FakeUnitOfWork(),
            relations=FakeRelations(),
            caller=ME,
            violation_ids=ids,
            given_relations={},
            rules=CONFIG.rules,
            now=NOW,
        )
    assert err.value.code == "TOO_MANY_VIOLATION_IDS"


# -- start ---------------------------------------------------------------------------------
async def test_r_adj_1_own_vehicle_starts_with_the_handlers_face_only() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    handling = await start(uow, ME, v, face=face)
    assert (handling.route, handling.state) == ("handler", "awaiting_verification")
    assert [(s.step, s.person_id, s.status) for s in handling.steps] == [
        ("handler", OWNER, "pending")
    ]
    assert [s.name for s in face.started] == ["张伟"]
    assert handling.handler_licence_id == OWNER_LICENCE
    assert uow.handlings.rows[handling.handling_id] == handling


async def test_r_adj_4_another_persons_point_bearing_needs_the_owner_then_the_handler() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    handling = await start(
        uow, FRIEND_CALLER, v, face=face, relations=FakeRelations({VEHICLE_ID: "followed"})
    )
    assert handling.route == "owner_then_handler"
    assert [(s.step, s.person_id) for s in handling.steps] == [
        ("owner", OWNER),
        ("handler", FRIEND),
    ]
    assert [s.name for s in face.started] == ["张伟", "刘洋"]


async def test_r_adj_3_a_zero_point_one_of_another_needs_only_the_handler() -> None:
    uow = world()
    v = await recorded(uow, "cam-1", violation_code="1039")
    handling = await start(uow, FRIEND_CALLER, v, relations=FakeRelations({VEHICLE_ID: "proven"}))
    assert (handling.route, [s.step for s in handling.steps]) == ("handler", ["handler"])


async def test_a_refused_start_lists_every_reason_and_writes_nothing() -> None:
    """R-ADJ-2 + R-ADJ-1: every failing rule, the first one's code, the counter route."""
    uow = world(friend_points=10, friend_class="B2")
    v = await recorded(uow, "cam-1")
    with pytest.raises(DomainError) as err:
        await start(uow, FRIEND_CALLER, v, relations=FakeRelations({VEHICLE_ID: "followed"}))
    assert err.value.code == "AB_CLASS_POINTS_COUNTER_ONLY"
    assert [r["code"] for r in err.value.details["reasons"]] == [
        "AB_CLASS_POINTS_COUNTER_ONLY",
        "POINTS_LIMIT_EXCEEDED",
    ]
    assert err.value.details["route"] == "counter"
    assert uow.handlings.rows == {}


async def test_an_unrelated_persons_start_answers_like_an_unknown_violation() -> None:
    """R-Q-1: a violation the caller cannot see is VIOLATION_NOT_FOUND, like a made-up id."""
    uow = world()
    v = await recorded(uow, "cam-1")
    with pytest.raises(DomainError) as seen:
        await start(uow, FRIEND_CALLER, v)
    made_up = dataclasses.replace(v, violation_id="7f1d4c1e-0000-4000-8000-000000000000")
    with pytest.raises(DomainError) as unknown:
        await start(uow, FRIEND_CALLER, made_up)
    assert seen.value.code == unknown.value.code == "VIOLATION_NOT_FOUND"
    assert seen.value.details == unknown.value.details


# -- verification steps --------------------------------------------------------------------
async def test_r_adj_4_the_owner_step_passes_before_the_handler_step() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    h = await start(
        uow, FRIEND_CALLER, v, face=face, relations=FakeRelations({VEHICLE_ID: "followed"})
    )
    args: dict[str, Any] = {
        "verifiers": {face.name: face},
        "caller": FRIEND_CALLER,
        "handling_id": h.handling_id,
        "config": CONFIG,
        "now": NOW,
    }
    face.answers[h.steps[1].certify_id] = "passed"
    with pytest.raises(DomainError) as err:
        await complete_verification(uow=fresh(uow), step="handler", **args)
    assert err.value.code == "HANDLING_OWNER_STEP_FIRST"
    pending = await complete_verification(uow=fresh(uow), step="owner", **args)
    assert pending.steps[0].status == "pending" and pending.state == "awaiting_verification"
    face.answers[h.steps[0].certify_id] = "failed"
    failed = await complete_verification(uow=fresh(uow), step="owner", **args)
    assert failed.steps[0].status == "failed" and failed.state == "awaiting_verification"
    face.answers[h.steps[0].certify_id] = "passed"
    owner_ok = await complete_verification(uow=fresh(uow), step="owner", **args)
    assert owner_ok.steps[0].expires_at == NOW + timedelta(minutes=10)
    done = await complete_verification(uow=fresh(uow), step="handler", **args)
    assert done.state == "verified"
    with pytest.raises(DomainError) as bad:
        await complete_verification(uow=fresh(uow), step="witness", **args)
    assert bad.value.code == "HANDLING_STEP_UNKNOWN"


async def test_another_persons_handling_answers_like_an_unknown_one() -> None:
    """Every handling operation answers HANDLING_NOT_FOUND for another person's handling."""
    uow = world()
    v = await recorded(uow, "cam-1")
    h = await start(uow, ME, v)
    for caller, handling_id in ((FRIEND_CALLER, h.handling_id), (ME, str(uuid_like(9)))):
        with pytest.raises(DomainError) as err:
            await get_handling(uow=fresh(uow), caller=caller, handling_id=handling_id)
        assert (err.value.code, err.value.details) == ("HANDLING_NOT_FOUND", {})
        with pytest.raises(DomainError) as err:
            await submit_handling(
                uow=fresh(uow), caller=caller, handling_id=handling_id, config=CONFIG, now=NOW
            )
        assert err.value.code == "HANDLING_NOT_FOUND"
    assert (await get_handling(uow=fresh(uow), caller=ME, handling_id=h.handling_id)) == h


def uuid_like(n: int) -> str:
    return f"7f1d4c1e-0000-4000-8000-{n:012d}"


# -- submit --------------------------------------------------------------------------------
async def test_r_adj_5_r_adj_7_submit_decides_adds_points_and_publishes_once() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    h = await verified(uow, face, ME, await start(uow, ME, v, face=face))
    submit_uow = fresh(uow)
    done = await submit_handling(
        uow=submit_uow, caller=ME, handling_id=h.handling_id, config=CONFIG, now=NOW
    )
    assert done.state == "submitted" and done.decision is not None
    d = done.decision
    assert d.decision_no == "5000000000000001" and len(d.decision_no) == 16
    assert (d.decision_date, d.due_date) == (date(2026, 11, 20), date(2026, 12, 5))
    assert all(s.used_at == NOW for s in done.steps)
    stored = await uow.violations.get(v.violation_id)
    assert stored is not None and stored.status == "handled_unpaid"
    assert stored.decision_no == d.decision_no
    assert uow.points.rows[OWNER_LICENCE].points == 3
    assert uow.points.rows[OWNER_LICENCE].external_change_at is None  # online: no guard
    assert [type(e).__name__ for e in submit_uow.published] == [
        "PointsChanged",
        "ViolationHandled",
    ]
    retry_uow = fresh(uow)
    again = await submit_handling(
        uow=retry_uow, caller=ME, handling_id=h.handling_id, config=CONFIG, now=NOW
    )
    assert again.decision == d
    assert retry_uow.published == [] and len(uow.points.entries) == 1


def count_usage_reads(uow: FakeUnitOfWork) -> list[str]:
    """Every vehicle id the points ledger is asked the R-X-2 usage of, in order."""
    asked: list[str] = []
    usage = uow.points.usage

    async def spy(licence: HandlerLicence, vehicle_ids: Sequence[str]) -> dict[str, CycleUsage]:
        asked.extend(vehicle_ids)
        return await usage(licence, vehicle_ids)

    uow.points.usage = spy  # type: ignore[method-assign]
    return asked


async def test_r_x_2_usage_is_read_for_other_peoples_vehicles_only() -> None:
    """R-X-2 limits points taken for other people's vehicles: the owner's start and submit
    run without the two usage statements, a follower's start still reads it."""
    uow = world()
    asked = count_usage_reads(uow)
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    h = await verified(uow, face, ME, await start(uow, ME, v, face=face))
    done = await submit_handling(
        uow=fresh(uow), caller=ME, handling_id=h.handling_id, config=CONFIG, now=NOW
    )
    assert done.state == "submitted" and asked == []
    other = await recorded(uow, "cam-2")
    await start(uow, FRIEND_CALLER, other, relations=FakeRelations({VEHICLE_ID: "followed"}))
    assert asked == [VEHICLE_ID]


async def test_submit_needs_every_step_passed_and_unexpired_r_adj_8() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    h = await start(uow, ME, v, face=face)
    with pytest.raises(DomainError) as err:
        await submit_handling(
            uow=fresh(uow), caller=ME, handling_id=h.handling_id, config=CONFIG, now=NOW
        )
    assert err.value.code == "VERIFICATION_PENDING"
    await verified(uow, face, ME, h)
    late = NOW + timedelta(minutes=10)
    with pytest.raises(DomainError) as err:
        await submit_handling(
            uow=fresh(uow), caller=ME, handling_id=h.handling_id, config=CONFIG, now=late
        )
    assert err.value.code == "VERIFICATION_EXPIRED"
    assert uow.points.entries == []


async def test_r_adj_5_submit_rechecks_the_points_limit_on_fresh_facts() -> None:
    uow = world()
    first = await recorded(uow, "cam-1", violation_code="1636", fine_fen=20_000)
    second = await recorded(uow, "cam-2", violation_code="1636", fine_fen=20_000)
    third = await recorded(uow, "cam-3", violation_code="1345")
    face = FakeFaceVerifier()
    handlings = [
        await verified(uow, face, ME, await start(uow, ME, v, face=face))
        for v in (first, second, third)
    ]
    for h in handlings[:2]:
        await submit_handling(
            uow=fresh(uow), caller=ME, handling_id=h.handling_id, config=CONFIG, now=NOW
        )
    assert uow.points.rows[OWNER_LICENCE].points == 12
    with pytest.raises(DomainError) as err:
        await submit_handling(
            uow=fresh(uow), caller=ME, handling_id=handlings[2].handling_id, config=CONFIG, now=NOW
        )
    assert err.value.code == "POINTS_LIMIT_EXCEEDED"
    assert uow.points.rows[OWNER_LICENCE].points == 12


async def test_r_adj_5_a_second_handling_of_a_handled_violation_is_already_handled() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    face = FakeFaceVerifier()
    one = await verified(uow, face, ME, await start(uow, ME, v, face=face))
    two = await verified(uow, face, ME, await start(uow, ME, v, face=face))
    await submit_handling(
        uow=fresh(uow), caller=ME, handling_id=one.handling_id, config=CONFIG, now=NOW
    )
    with pytest.raises(DomainError) as err:
        await submit_handling(
            uow=fresh(uow), caller=ME, handling_id=two.handling_id, config=CONFIG, now=NOW
        )
    assert err.value.code == "ALREADY_HANDLED"


async def test_r_x_2_a_refused_points_buying_attempt_raises_a_staff_alert() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    # the friend's licence already took points for three other people's vehicles
    for n in range(3):
        vehicle = uuid_like(100 + n)
        uow.violations.owners_by_vehicle[vehicle] = uuid_like(200 + n)
        other = dataclasses.replace(v, violation_id=uuid_like(300 + n), vehicle_id=vehicle)
        uow.violations.rows[other.violation_id] = (other, "x")
        uow.points.entries.append(
            PointsEntry(FRIEND_LICENCE, 3, 3 * (n + 1), "online", other.violation_id, CYCLE[0], NOW)
        )
    with pytest.raises(DomainError) as err:
        await start(uow, FRIEND_CALLER, v, relations=FakeRelations({VEHICLE_ID: "followed"}))
    assert err.value.code == "POINTS_BUYING_VEHICLE_LIMIT"
    page = await list_points_buying_alerts(uow=fresh(uow), caller=CLERK, page_size=0, cursor="")
    assert [(a.kind, a.count, a.licence_id, a.violation_id) for a in page.alerts] == [
        ("licence_for_many_vehicles", 3, FRIEND_LICENCE, v.violation_id)
    ]
    with pytest.raises(DomainError) as forbidden:
        await list_points_buying_alerts(uow=fresh(uow), caller=ME, page_size=0, cursor="")
    assert forbidden.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as bad:
        await list_points_buying_alerts(uow=fresh(uow), caller=CLERK, page_size=0, cursor="!!")
    assert bad.value.code == "INVALID_CURSOR"


# -- counter, decisions, disputes -------------------------------------------------------------
async def test_the_counter_decides_an_over_200_yuan_general_procedure_case() -> None:
    """DOMAIN.md: a non-site general-procedure case gets its decision at the counter; the
    fine and licence-class limits are lifted, the points go on the licence with channel
    counter (an outside change for R-ADJ-6); the same call again returns it."""
    uow = world(friend_class="A2")
    v = await recorded(
        uow, "SBX-ZW-03", violation_code="1636", fine_fen=50_000, procedure="general"
    )
    args: dict[str, Any] = {
        "verifier": FakeCounter(),
        "violation_id": v.violation_id,
        "licence_no": FRIEND_LICENCE_NO.lower(),
        "config": CONFIG,
        "now": NOW,
    }
    with pytest.raises(DomainError) as err:
        await handle_at_counter(uow=fresh(uow), caller=FRIEND_CALLER, **args)
    assert err.value.code == "FORBIDDEN"
    counter_uow = fresh(uow)
    h = await handle_at_counter(uow=counter_uow, caller=CLERK, **args)
    assert (h.route, h.state, h.staff_id, h.handler_licence_id) == (
        "counter",
        "submitted",
        "clerk01",
        FRIEND_LICENCE,
    )
    assert h.decision is not None and h.decision.points == 6
    row = uow.points.rows[FRIEND_LICENCE]
    assert (row.points, row.external_change_at) == (6, NOW)
    handled = [e for e in counter_uow.published if type(e).__name__ == "ViolationHandled"]
    assert len(handled) == 1
    again = await handle_at_counter(uow=fresh(uow), caller=CLERK, **args)
    assert again.decision == h.decision and len(uow.points.entries) == 1


async def test_the_counter_keeps_the_points_limit() -> None:
    uow = world(friend_points=9)
    v = await recorded(uow, "cam-1", violation_code="1636")
    with pytest.raises(DomainError) as err:
        await handle_at_counter(
            uow=fresh(uow),
            verifier=FakeCounter(),
            caller=CLERK,
            violation_id=v.violation_id,
            licence_no=FRIEND_LICENCE_NO,
            config=CONFIG,
            now=NOW,
        )
    assert err.value.code == "POINTS_LIMIT_EXCEEDED"
    assert uow.points.rows[FRIEND_LICENCE].points == 9


class FakeCounter(FakeFaceVerifier):
    name = "counter"

    async def result(self, certify_id: str) -> FaceResult:
        return "passed"


async def test_r_adj_9_a_dispute_blocks_online_handling_until_cleared() -> None:
    uow = world()
    v = await recorded(uow, "cam-1")
    with pytest.raises(DomainError) as err:
        await dispute_violation(uow=fresh(uow), caller=ME, violation_id=v.violation_id, reason="x")
    assert err.value.code == "FORBIDDEN"
    dispute_uow = fresh(uow)
    disputed = await dispute_violation(
        uow=dispute_uow, caller=CLERK, violation_id=v.violation_id, reason="车辆被套牌"
    )
    assert disputed.disputed and [type(e).__name__ for e in dispute_uow.published] == [
        "ViolationDisputed"
    ]
    again = fresh(uow)
    await dispute_violation(uow=again, caller=CLERK, violation_id=v.violation_id, reason="x")
    assert again.published == []
    with pytest.raises(DomainError) as refused:
        await start(uow, ME, v)
    assert refused.value.code == "DISPUTED_COUNTER_ONLY"
    clear_uow = fresh(uow)
    cleared = await undispute_violation(uow=clear_uow, caller=CLERK, violation_id=v.violation_id)
    assert not cleared.disputed
    assert [type(e).__name__ for e in clear_uow.published] == ["ViolationUndisputed"]
    assert (await start(uow, ME, v)).route == "handler"


async def test_record_decision_books_the_officers_decision_once() -> None:
    uow = world(friend_points=11)
    v = await recorded(uow, "cam-1", violation_code="1636", procedure="general", fine_fen=50_000)
    args: dict[str, Any] = {
        "caller": CLERK,
        "violation_id": v.violation_id,
        "decision_no": "5001121234567890",
        "decision_date": date(2026, 11, 19),
        "licence_no": FRIEND_LICENCE_NO,
        "now": NOW,
    }
    first_uow = fresh(uow)
    decided = await record_decision(uow=first_uow, **args)
    assert (decided.status, decided.decision_no) == ("handled_unpaid", "5001121234567890")
    # a legal fact: booked past the online limit, as another channel
    assert uow.points.rows[FRIEND_LICENCE].points == 17
    assert len(first_uow.published) == 2
    replay = fresh(uow)
    assert await record_decision(uow=replay, **args) == decided
    assert replay.published == []
    with pytest.raises(DomainError) as err:
        await record_decision(uow=fresh(uow), **(args | {"decision_no": "5001121234567891"}))
    assert err.value.code == "ALREADY_DECIDED"
