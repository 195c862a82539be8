"""Unit tests of the sandbox loader's pure parts (roster → registry records and
RecordViolation requests) and of its retry/summary logic with fake stubs (no cluster)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from cqadjudication.domain.violations import RecordingWindow, validate_report
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DomainError, ErrorKind, ErrorSpec
from cqcommon.identifiers import is_valid_vin, points_of_code
from cqcommon.protomap import (
    PROCEDURE_NAMES,
    SOURCE_NAMES,
    date_from_proto,
    plate_type_from_proto,
    timestamp_from_proto,
)
from cqregistry.domain.imports import LICENCE_STATE, MAX_BATCH
from cqregistry.domain.roster import roster_vin_table, sandbox_roster
from cqregistry.entrypoints import loader
from cqregistry.entrypoints.mappers import entry_from_proto
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.follow.v1 import follow_pb2 as follow_pb
from cqtraffic.payment.v1 import payment_pb2 as payment_pb
from cqtraffic.registry.v1 import registry_pb2 as reg

TODAY = dt.date(2025, 11, 21)
ROSTER = sandbox_roster(TODAY)
RECORDS = loader.roster_records(ROSTER)
PLANNED = loader.violation_requests(ROSTER)
SANDBOX_PLATES = {  # SANDBOX.md: plate -> plate type
    "渝A12345": "02",
    "渝AD12345": "52",
    "渝B23456": "02",
    "渝A67890": "02",
    "渝C34567": "02",
    "渝A99999": "02",
}


def _by_kind(kind: str) -> list[Any]:
    return [getattr(r, kind) for r in RECORDS if r.WhichOneof("record") == kind]


def _driver_of(name: str) -> reg.DriverRecord:
    person = next(p for p in _by_kind("person") if p.name == name)
    drivers = [r.driver for r in RECORDS if r.WhichOneof("record") == "driver"]
    return next(d for d in drivers if d.holder_id_number == person.id_number)


def _requests(prefix: str) -> list[adj.RecordViolationRequest]:
    return [p.request for p in PLANNED if p.request.source_record_id.startswith(prefix)]


def test_record_counts_and_all_valid_for_the_import() -> None:
    kinds = [r.WhichOneof("record") for r in RECORDS]
    assert kinds.count("violation_code") == 35
    assert kinds.count("person") == 10
    assert kinds.count("vehicle") == 6
    assert kinds.count("driver") == 8
    for i, record in enumerate(RECORDS):
        entry_from_proto(i, record)  # raises on anything the import would reject


def test_roster_records_pin_the_listed_ids_and_name_people_by_id_number() -> None:
    """The import keys records by natural keys; the roster pins its listed ids."""
    people = {p.id_number: p for p in _by_kind("person")}
    assert {p.pinned_id for p in people.values()} == {str(p.person_id) for p in ROSTER.people}
    for v in _by_kind("vehicle"):
        roster_vehicle = ROSTER.vehicle(v.plate_number)
        assert v.pinned_id == str(roster_vehicle.vehicle_id)
        owner = people[v.owner_id_number]
        assert owner.pinned_id == str(roster_vehicle.owner_person_id)
    for d in _by_kind("driver"):
        assert d.holder_id_number == d.licence_no and d.holder_id_number in people
        assert d.pinned_id in {str(lic.licence_id) for lic in ROSTER.licences}


def test_sandbox_plates_and_vins() -> None:
    vehicles = {v.plate_number: v for v in _by_kind("vehicle")}
    assert {p: plate_type_from_proto(v.plate_type) for p, v in vehicles.items()} == SANDBOX_PLATES
    assert all(is_valid_vin(v.vin) for v in vehicles.values())
    table = {plate: (ptype, last6) for plate, ptype, last6 in roster_vin_table()}
    for plate, v in vehicles.items():
        assert table[plate] == (SANDBOX_PLATES[plate], v.vin[-6:])


def test_personas_licences() -> None:
    assert (_driver_of("张伟").licence_class, _driver_of("张伟").points) == ("C1", 3)
    assert (_driver_of("李娜").licence_class, _driver_of("李娜").points) == ("C1", 9)
    assert (_driver_of("王强").licence_class, _driver_of("王强").points) == ("A2", 0)
    assert (_driver_of("刘洋").licence_class, _driver_of("刘洋").points) == ("C1", 0)
    assert _driver_of("赵敏").points == 2
    alipay = {p.alipay_user_id for p in _by_kind("person")}
    assert {f"208800000000000{i}" for i in range(1, 6)} <= alipay
    chen = next(p for p in _by_kind("person") if p.name == "陈静")
    assert (chen.phone, chen.alipay_user_id) == ("13900000005", "")


def test_r_adj_boundary_violations_present() -> None:
    # 李娜 (9 points): a 3-point one is allowed (12), a 6-point one refused (15)
    ln_points = sorted(points_of_code(r.violation_code) for r in _requests("SBX-LN-"))
    assert ln_points == [3, 6]
    # 王强 (A2): a point-bearing one refused (R-ADJ-2), a 0-point one allowed
    wq_points = {points_of_code(r.violation_code) for r in _requests("SBX-WQ-")}
    assert 0 in wq_points and any(p > 0 for p in wq_points)
    # 张伟: eligible 0- and 3-point non-site ≤ 200 yuan, one non-site over 200 yuan
    zw = _requests("SBX-ZW-")
    eligible = [
        points_of_code(r.violation_code)
        for r in zw
        if SOURCE_NAMES[r.source] == "non_site" and r.fine_fen <= 20000 and not r.decision_no
    ]
    assert {0, 3} <= set(eligible)
    assert any(SOURCE_NAMES[r.source] == "non_site" and r.fine_fen > 20000 for r in zw)
    # 赵敏: decision 35 days ago (due after 15 → overdue by 20)
    (zm,) = _requests("SBX-ZM-")
    assert date_from_proto(zm.decision_date) == TODAY - dt.timedelta(days=35)


def test_requests_are_stable_and_decided_ones_carry_a_decision() -> None:
    ids = [p.request.source_record_id for p in PLANNED]
    assert len(ids) == len(set(ids)) == len(ROSTER.violations)
    assert all(p.request.source_system == "sandbox" for p in PLANNED)
    assert [p.request for p in loader.violation_requests(sandbox_roster(TODAY))] == [
        p.request for p in PLANNED
    ]
    for p in PLANNED:
        r = p.request
        if SOURCE_NAMES[r.source] == "on_site" or r.decision_no:
            assert r.decision_no and date_from_proto(r.decision_date) is not None
            assert r.licence_no  # the decision went on someone's licence
    paid = [p.request.source_record_id for p in PLANNED if p.paid]
    assert paid == ["SBX-ZW-05"]  # paid at the sandbox counter through the payment service


def test_zw_03_is_sent_without_a_decision() -> None:
    """DOMAIN.md: SBX-ZW-03 (non-site, over 200 yuan) is general procedure without a
    decision; the loader sends neither decision number nor date for it."""
    (zw03,) = [p.request for p in PLANNED if p.request.source_record_id == "SBX-ZW-03"]
    assert (SOURCE_NAMES[zw03.source], PROCEDURE_NAMES[zw03.procedure]) == ("non_site", "general")
    assert zw03.fine_fen > 20000
    assert zw03.decision_no == "" and not zw03.HasField("decision_date")
    assert zw03.licence_no == ""


def test_requests_pass_adjudication_validation() -> None:
    """Every roster violation is a record adjudication accepts, SBX-ZW-03 (a non-site
    general-procedure record without a decision, DOMAIN.md) included."""
    clock = FixedClock(dt.datetime.combine(TODAY, dt.time(12), tzinfo=SHANGHAI))
    window = RecordingWindow(clock_skew=dt.timedelta(minutes=5), floor_date=dt.date(2000, 1, 1))
    refused = []
    for p in PLANNED:
        r = p.request
        ptype = plate_type_from_proto(r.plate_type)
        try:
            validate_report(
                source_system=r.source_system,
                source_record_id=r.source_record_id,
                plate_type=ptype.value if ptype else "",
                plate_number=r.plate_number,
                licence_no=r.licence_no or None,
                violation_code=r.violation_code,
                occurred_at=timestamp_from_proto(r.occurred_at),
                place=r.place,
                fine_fen=r.fine_fen,
                source=SOURCE_NAMES[r.source],
                procedure=PROCEDURE_NAMES[r.procedure],
                decision_no=r.decision_no or None,
                decision_date=date_from_proto(r.decision_date),
                clock=clock,
                window=window,
            )
        except DomainError as exc:
            refused.append((r.source_record_id, exc.code))
    assert refused == []


def test_batches_at_most_max_batch() -> None:
    sizes = [len(b) for b in loader.batches(list(range(2 * MAX_BATCH + 1)))]
    assert sizes == [MAX_BATCH, MAX_BATCH, 1]
    assert [len(b) for b in loader.batches(RECORDS)] == [len(RECORDS)]


# -- retry and summary with fake stubs --------------------------------------------------
def _error(code: str) -> DomainError:
    return DomainError(ErrorSpec(code, ErrorKind.NOT_FOUND, code, code))


class FakeAdjudication:
    """Answers VEHICLE_NOT_FOUND ``misses`` times, then records (a replay the 2nd time)."""

    def __init__(self, misses: int = 0, error: str | None = None) -> None:
        self.misses = misses
        self.error = error
        self.seen: set[str] = set()
        self.calls = 0

    async def RecordViolation(  # noqa: N802 - the gRPC method name
        self,
        request: adj.RecordViolationRequest,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC stub signature
    ) -> adj.RecordViolationResponse:
        assert timeout is not None and timeout > 0  # every call has a deadline
        self.calls += 1
        if self.error:
            raise _error(self.error)
        if self.misses:
            self.misses -= 1
            raise _error("VEHICLE_NOT_FOUND")
        created = request.source_record_id not in self.seen
        self.seen.add(request.source_record_id)
        return adj.RecordViolationResponse(created=created)


async def _record_all(stub: FakeAdjudication, budget: loader.RetryBudget) -> loader.SandboxSummary:
    summary = loader.SandboxSummary()
    for planned in PLANNED:
        await loader._record(stub, planned, budget, 5.0, summary)  # type: ignore[arg-type]
    return summary


async def test_not_yet_known_is_retried_then_replays_count_as_unchanged() -> None:
    stub = FakeAdjudication(misses=3)
    budget = loader.RetryBudget(remaining_s=5.0, first_delay_s=0.001)
    first = await _record_all(stub, budget)
    assert first.created == len(PLANNED) and first.replayed == 0
    second = await _record_all(stub, budget)
    assert (second.created, second.replayed) == (0, len(PLANNED))
    assert second.notes == []


async def test_gives_up_clearly_after_the_budget() -> None:
    stub = FakeAdjudication(misses=10**6)
    budget = loader.RetryBudget(remaining_s=0.05, first_delay_s=0.01)
    with pytest.raises(loader.LoadError, match="VEHICLE_NOT_FOUND"):
        await _record_all(stub, budget)


async def test_other_errors_fail_at_once_and_decision_required_is_reported() -> None:
    with pytest.raises(loader.LoadError, match="INVALID_FINE"):
        await _record_all(FakeAdjudication(error="INVALID_FINE"), loader.RetryBudget())
    summary = await _record_all(FakeAdjudication(error="DECISION_REQUIRED"), loader.RetryBudget())
    assert summary.refused == len(PLANNED)
    summary = await _record_all(
        FakeAdjudication(error="SOURCE_RECORD_CONFLICT"), loader.RetryBudget()
    )
    assert summary.kept == len(PLANNED)


def test_licence_status_uses_the_registry_protocol_words() -> None:
    assert set(LICENCE_STATE.values()) <= {"valid", "suspended", "revoked"}


class FakePayment:
    """PaymentService.CreateCounterPayment: not yet known ``misses`` times, then paid once;
    the same key again replays; ``error`` answers every call with that code."""

    def __init__(self, *, misses: int = 0, error: str | None = None) -> None:
        self.misses = misses
        self.error = error
        self.requests: list[payment_pb.CreateCounterPaymentRequest] = []

    async def CreateCounterPayment(  # noqa: N802 - the gRPC method name
        self,
        request: payment_pb.CreateCounterPaymentRequest,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC stub signature
    ) -> payment_pb.CreatePaymentResponse:
        assert timeout is not None and timeout > 0
        self.requests.append(request)
        if self.error:
            raise _error(self.error)
        if self.misses:
            self.misses -= 1
            raise _error("DECISION_NOT_FOUND")
        same_key = [r for r in self.requests if r.idempotency_key == request.idempotency_key]
        return payment_pb.CreatePaymentResponse(replayed=len(same_key) > 1)


PAID_REQUEST = next(p.request for p in PLANNED if p.paid)


async def test_the_paid_roster_violation_is_paid_at_the_counter_once_payment_knows_it() -> None:
    """R-SBX-1 / R-PAY-1: the roster's paid violation is paid through the payment service
    (cash at the sandbox desk), retried until payment has learned the decision; the key is
    the same on every load, so a second load replays the first payment."""
    stub = FakePayment(misses=2)
    budget = loader.RetryBudget(remaining_s=5.0, first_delay_s=0.001)
    summary = loader.SandboxSummary()
    for _ in range(2):
        await loader._pay_at_counter(stub, PAID_REQUEST, budget, 5.0, summary)  # type: ignore[arg-type]
    assert summary.paid == 2 and summary.notes == []
    keys = {r.idempotency_key for r in stub.requests}
    assert len(keys) == 1 and len(stub.requests) == 4
    (request,) = {r.SerializeToString(): r for r in stub.requests}.values()
    assert request.decision_no == PAID_REQUEST.decision_no and request.method == "cash"
    assert request.caller.staff_id and not request.caller.user_id
    assert request.request_hash


async def test_an_already_paid_decision_counts_and_the_maintenance_window_is_noted() -> None:
    """R-PAY-6: inside 22:00-00:30 the counter payment is refused; the load goes on and says
    to run it again after 00:30. ALREADY_PAID (an earlier load) counts as paid."""
    summary = loader.SandboxSummary()

    async def pay(error: str) -> None:
        budget = loader.RetryBudget(remaining_s=1.0, first_delay_s=0.001)
        stub: Any = FakePayment(error=error)
        await loader._pay_at_counter(stub, PAID_REQUEST, budget, 5.0, summary)

    await pay("ALREADY_PAID")
    assert summary.paid == 1
    await pay("MAINTENANCE_WINDOW")
    assert summary.paid == 1 and any("00:30" in n for n in summary.notes)
    with pytest.raises(loader.LoadError, match="DECISION_DISPUTED"):
        await pay("DECISION_DISPUTED")


# -- the roster's follows (R-FOL-4: 渝A99999 already has three followers) ------------------
SEEDS = loader.follow_seed_requests(ROSTER)


def test_the_roster_follows_are_seeded_as_the_sandbox_desk() -> None:
    people = {p.person_id: p.name for p in ROSTER.people}
    a99999 = str(ROSTER.vehicle("渝A99999").vehicle_id)
    assert [(people[uuid.UUID(s.follower_person_id)], s.vehicle_id) for s in SEEDS] == [
        ("孙磊", a99999),
        ("周婷", a99999),
        ("吴昊", a99999),
    ]
    assert all(s.caller.staff_id == "sandbox-loader" and not s.caller.user_id for s in SEEDS)


class FakeFollow:
    """FollowService.SeedFollow: not yet known ``misses`` times (vehicle, then person), then
    the same follow per (follower, vehicle); ``error`` answers every call with that code."""

    def __init__(self, *, misses: int = 0, error: str | None = None) -> None:
        self.misses = misses
        self.error = error
        self.requests: list[follow_pb.SeedFollowRequest] = []

    async def SeedFollow(  # noqa: N802 - the gRPC method name
        self,
        request: follow_pb.SeedFollowRequest,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC stub signature
    ) -> follow_pb.Follow:
        assert timeout is not None and timeout > 0
        self.requests.append(request)
        if self.error:
            raise _error(self.error)
        if self.misses:
            self.misses -= 1
            raise _error("FOLLOW_VEHICLE_NOT_FOUND" if self.misses % 2 else "NOT_FOUND")
        return follow_pb.Follow(
            follow_id=f"{request.follower_person_id}:{request.vehicle_id}", consent="owner_app"
        )


async def test_roster_follows_are_retried_until_the_follow_service_knows_them() -> None:
    stub = FakeFollow(misses=4)
    budget = loader.RetryBudget(remaining_s=5.0, first_delay_s=0.001)
    summary = loader.SandboxSummary()
    for seed in SEEDS:
        await loader._seed_follow(stub, seed, budget, 5.0, summary)  # type: ignore[arg-type]
    assert summary.follows == 3 and summary.notes == []
    assert len(stub.requests) == 3 + 4
    assert "follow: 3 roster follow(s) in place" in summary.lines()


async def test_a_full_vehicle_or_a_non_sandbox_follow_service_is_noted_other_errors_fail() -> None:
    summary = loader.SandboxSummary()
    for code in ("FOLLOW_QUOTA_EXCEEDED", "SANDBOX_ONLY"):
        stub: Any = FakeFollow(error=code)
        await loader._seed_follow(stub, SEEDS[0], loader.RetryBudget(), 5.0, summary)
    assert summary.follows == 0 and len(summary.notes) == 2
    with pytest.raises(loader.LoadError, match="FOLLOW_OWN_VEHICLE"):
        stub = FakeFollow(error="FOLLOW_OWN_VEHICLE")
        await loader._seed_follow(stub, SEEDS[0], loader.RetryBudget(), 5.0, summary)
    with pytest.raises(loader.LoadError, match=r"still (FOLLOW_VEHICLE_)?NOT_FOUND"):
        stub = FakeFollow(misses=10**6)
        budget = loader.RetryBudget(remaining_s=0.05, first_delay_s=0.01)
        await loader._seed_follow(stub, SEEDS[0], budget, 5.0, summary)


class FakeRegistryMark:
    """RegistryService.MarkSandboxRosterLoaded answering ``error`` (or success)."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.requests: list[Any] = []

    async def MarkSandboxRosterLoaded(  # noqa: N802 - the gRPC method name
        self,
        request: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC stub signature
    ) -> Any:
        assert timeout is not None and timeout > 0
        self.requests.append(request)
        if self.error:
            raise _error(self.error)
        return object()


async def test_the_load_is_recorded_last_and_a_registry_outside_sandbox_mode_is_noted() -> None:
    """R-SBX-1: a completed load is recorded with the registry (the gateway's /readyz waits
    for it); outside sandbox mode the registry refuses (SANDBOX_ONLY) and the load says so."""
    summary = loader.SandboxSummary(records=59, created=12, follows=3)
    stub: Any = FakeRegistryMark()
    await loader._mark_loaded(stub, loader.RetryBudget(), 5.0, summary)
    (request,) = stub.requests
    assert (request.records, request.violations, request.follows) == (59, 12, 3)
    assert summary.notes == []
    await loader._mark_loaded(FakeRegistryMark("SANDBOX_ONLY"), loader.RetryBudget(), 5.0, summary)  # type: ignore[arg-type]
    assert any("not in sandbox mode" in n for n in summary.notes)
    refusing: Any = FakeRegistryMark("VALIDATION_FAILED")
    with pytest.raises(loader.LoadError, match="VALIDATION_FAILED"):
        await loader._mark_loaded(refusing, loader.RetryBudget(), 5.0, summary)
