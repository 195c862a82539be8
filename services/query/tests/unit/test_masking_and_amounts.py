"""Masking in the query's views (R-Q-4), amounts shown (R-Q-3 / R-PAY-2) and the mapping
of rows to views, all pure: no database, no Redis. The masking rule itself (who sees a
person in full, the masks) is tested with it in libs/common/tests/unit/test_masking.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cqquery.adapters.cache import facts_from_json, facts_to_json
from cqquery.domain.amounts import amount_view
from cqquery.domain.masking import Person
from cqquery.domain.model import AccessFacts, LicenceRow, VehicleRow, ViolationRow
from cqquery.domain.results import licence_shown, vehicle_shown, violation_shown
from cqquery.entrypoints.mappers import licence_to_proto, vehicle_to_proto, violation_to_proto

OWNER = Person("p-owner", "张伟", "500101199001011234", "13900005678")
TODAY = date(2026, 11, 21)


def _vehicle() -> VehicleRow:
    return VehicleRow(
        vehicle_id="v1",
        plate_type="02",
        plate_number="渝A12345",
        vin="LSVAB12C0M1234567",
        owner_person_id="p-owner",
        vehicle_kind="personal_small_car",
        owner=OWNER,
        unhandled_count=2,
        unpaid_count=1,
    )


def test_vehicle_view_for_a_follower_is_masked() -> None:
    """R-Q-4: a follower sees the owner masked and the VIN's last 6 only."""
    view = vehicle_to_proto(
        vehicle_shown(_vehicle(), relation="followed", caller_person_id="p-x", is_staff=False)
    )
    assert view.vin == "***********234567"
    assert view.owner.id_number == "5001**********1234"
    assert view.owner.phone == "139****5678"
    assert view.relation == "followed"
    assert (view.unhandled_count, view.unpaid_count) == (2, 1)
    own = vehicle_to_proto(
        vehicle_shown(_vehicle(), relation="own", caller_person_id="p-owner", is_staff=False)
    )
    assert own.vin == "LSVAB12C0M1234567" and own.owner.phone == "13900005678"


def test_licence_view_masks_the_licence_number_and_shows_the_dashboard() -> None:
    """R-Q-4 and R-X-1: licence number is an ID number; points, cycle end, may drive."""
    row = LicenceRow(
        licence_id="l1",
        person_id="p-owner",
        licence_no="500101199001011234",
        file_no="500100123456",
        licence_class="C1",
        first_issued_on=date(2015, 3, 1),
        points=12,
        status="valid",
        cycle_start=None,
        cycle_end=None,
        holder=OWNER,
        unhandled_count=0,
        unpaid_count=0,
    )
    view = licence_to_proto(
        licence_shown(
            row,
            relation="proven",
            caller_person_id="p-x",
            is_staff=False,
            today=TODAY,
            points_limit=12,
        )
    )
    assert view.licence_no == "5001**********1234"
    assert view.file_no == "********3456"
    assert view.holder.name == "张*"
    board = view.points
    assert (board.points, board.points_limit, board.may_drive) == (12, 12, False)
    assert board.limit_reason == "POINTS_LIMIT_REACHED" and board.limit_reason_zh
    assert (board.cycle_end.year, board.cycle_end.month, board.cycle_end.day) == (2027, 2, 28)


def test_amount_due_by_status() -> None:
    """R-Q-3 / R-PAY-2: unhandled shows the fine, unpaid adds the late fee, paid owes 0."""
    unhandled = amount_view(status="unhandled", fine_fen=20_000, decision_date=None, today=TODAY)
    assert (unhandled.due_date, unhandled.late_fee_fen, unhandled.amount_due_fen) == (
        None,
        0,
        20_000,
    )
    late = amount_view(
        status="handled_unpaid", fine_fen=20_000, decision_date=date(2026, 10, 17), today=TODAY
    )
    assert (late.due_date, late.late_fee_fen, late.amount_due_fen) == (
        date(2026, 11, 1),
        12_000,
        32_000,
    )
    paid = amount_view(
        status="paid", fine_fen=20_000, decision_date=date(2026, 10, 17), today=TODAY
    )
    assert (paid.due_date, paid.late_fee_fen, paid.amount_due_fen) == (date(2026, 11, 1), 0, 0)


def test_violation_view_carries_the_amount_due() -> None:
    """R-Q-3: a decided, overdue violation shows its due date and fine + late fee."""
    row = ViolationRow(
        violation_id="x1",
        vehicle_id="v1",
        plate_type="02",
        plate_number="渝A12345",
        licence_id="l1",
        violation_code="1345",
        description_zh="超速",
        occurred_at=datetime(2026, 10, 1, 1, 0, tzinfo=UTC),
        place="重庆",
        fine_fen=20_000,
        points=3,
        source="on_site",
        procedure="simple",
        status="handled_unpaid",
        decision_no="5001011234567890",
        decision_date=date(2026, 10, 17),
        disputed=False,
    )
    view = violation_to_proto(violation_shown(row, today=TODAY))
    assert (view.late_fee_fen, view.amount_due_fen) == (12_000, 32_000)
    assert (view.due_date.year, view.due_date.month, view.due_date.day) == (2026, 11, 1)


def test_cached_facts_round_trip() -> None:
    facts = AccessFacts(True, "p-owner", (("2088000000000004", None), ("2088x", 1.5e9)))
    assert facts_from_json(facts_to_json(facts)) == facts
    missing = AccessFacts(False, None, ())
    assert facts_from_json(facts_to_json(missing)) == missing
