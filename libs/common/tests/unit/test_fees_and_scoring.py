"""Unit tests of the pure money and points rules: R-PAY-2 late fees, R-X-1 dashboard."""

from __future__ import annotations

from datetime import date

import pytest
from cqcommon.fees import amount_due, due_date, late_fee_fen
from cqcommon.scoring import (
    LICENCE_REVOKED,
    LICENCE_SUSPENDED,
    POINTS_LIMIT_REACHED,
    ScoringCycle,
    cycle_on,
    dashboard,
    may_drive,
)

DECIDED = date(2026, 3, 1)


def test_due_fifteen_days_after_the_decision() -> None:
    """R-PAY-2: due date is 15 days after the decision date."""
    assert due_date(DECIDED) == date(2026, 3, 16)


@pytest.mark.parametrize(
    ("today", "days_late", "late_fee"),
    [
        (date(2026, 3, 1), 0, 0),  # decision day
        (date(2026, 3, 16), 0, 0),  # the 15th day after: still the fine only
        (date(2026, 3, 17), 1, 600),  # the 16th day: 3 % of 200 yuan
        (date(2026, 3, 18), 2, 1_200),
        (date(2026, 4, 18), 33, 19_800),  # 99 %
        (date(2026, 4, 19), 34, 20_000),  # 102 % → capped at the fine
        (date(2027, 3, 1), 350, 20_000),
    ],
)
def test_late_fee_three_percent_a_day_from_day_sixteen_capped_at_the_fine(
    today: date, days_late: int, late_fee: int
) -> None:
    """R-PAY-2: 3 % of the fine per day from the 16th day, at most the fine (2x in all)."""
    owed = amount_due(20_000, DECIDED, today)
    assert owed.days_late == days_late
    assert owed.late_fee_fen == late_fee
    assert owed.total_fen == 20_000 + late_fee
    assert owed.total_fen <= 2 * 20_000


def test_late_fee_rounds_down_in_the_payers_favour() -> None:
    """R-PAY-2: fractions of a fen are dropped, computed on the total (no per-day drift)."""
    assert late_fee_fen(5_050, 1) == 151  # 151.5
    assert late_fee_fen(5_050, 3) == 454  # 454.5, not 3 x 151
    assert late_fee_fen(0, 10) == 0


def test_late_fee_refuses_a_negative_fine() -> None:
    with pytest.raises(ValueError):
        late_fee_fen(-1, 3)


def test_before_the_decision_nothing_is_late() -> None:
    """R-PAY-2: a clock before the decision date never yields a negative late fee."""
    owed = amount_due(10_000, DECIDED, date(2026, 2, 1))
    assert (owed.days_late, owed.late_fee_fen, owed.total_fen) == (0, 0, 10_000)


def test_zhao_min_twenty_days_overdue_owes_sixty_percent() -> None:
    """R-PAY-2 on the sandbox persona 赵敏: a decision overdue by 20 days owes 60 % more."""
    today = date(2026, 11, 21)
    decided = date(2026, 10, 17)  # due 11-01, 20 days late on 11-21
    owed = amount_due(20_000, decided, today)
    assert owed.days_late == 20
    assert owed.late_fee_fen == 12_000


@pytest.mark.parametrize(
    ("first_issued", "today", "start", "end"),
    [
        (date(2015, 6, 10), date(2026, 11, 21), date(2026, 6, 10), date(2027, 6, 9)),
        (date(2015, 6, 10), date(2026, 6, 9), date(2025, 6, 10), date(2026, 6, 9)),
        (date(2015, 6, 10), date(2026, 6, 10), date(2026, 6, 10), date(2027, 6, 9)),
        (date(2020, 1, 1), date(2026, 12, 31), date(2026, 1, 1), date(2026, 12, 31)),
        # 29 February: the anniversary is 28 February in common years
        (date(2016, 2, 29), date(2026, 3, 1), date(2026, 2, 28), date(2027, 2, 27)),
        (date(2016, 2, 29), date(2028, 3, 1), date(2028, 2, 29), date(2029, 2, 27)),
        # issued today or in the future: the first cycle
        (date(2026, 11, 21), date(2026, 11, 21), date(2026, 11, 21), date(2027, 11, 20)),
        (date(2026, 12, 1), date(2026, 11, 21), date(2026, 12, 1), date(2027, 11, 30)),
    ],
)
def test_cycle_runs_twelve_months_from_the_first_issue_anniversary(
    first_issued: date, today: date, start: date, end: date
) -> None:
    """R-X-1: the cycle containing today, from the anniversary of first issue."""
    cycle = cycle_on(first_issued, today)
    assert (cycle.start, cycle.end) == (start, end)
    assert cycle.contains(max(today, first_issued))


@pytest.mark.parametrize(
    ("points", "status", "allowed", "reason"),
    [
        (0, "valid", True, None),
        (11, "valid", True, None),
        (12, "valid", False, POINTS_LIMIT_REACHED),
        (15, "valid", False, POINTS_LIMIT_REACHED),
        (3, "suspended", False, LICENCE_SUSPENDED),
        (3, "revoked", False, LICENCE_REVOKED),
    ],
)
def test_may_drive_below_the_limit_with_a_valid_licence(
    points: int, status: str, allowed: bool, reason: str | None
) -> None:
    """R-X-1: whether the licence allows driving, with a reason when it does not."""
    assert may_drive(points, status, 12) == (allowed, reason)


def test_dashboard_uses_the_reported_cycle_while_it_is_current() -> None:
    """R-X-1: the cycle adjudication reported wins while it contains today."""
    reported = ScoringCycle(date(2026, 6, 10), date(2027, 6, 9))
    board = dashboard(
        points=3,
        licence_status="valid",
        first_issued_on=date(2015, 6, 10),
        today=date(2026, 11, 21),
        points_limit=12,
        cycle=reported,
    )
    assert board.cycle == reported
    assert board.may_drive and board.limit_reason is None and board.limit_reason_text is None

    stale = ScoringCycle(date(2025, 6, 10), date(2026, 6, 9))
    board = dashboard(
        points=12,
        licence_status="valid",
        first_issued_on=date(2015, 6, 10),
        today=date(2026, 11, 21),
        points_limit=12,
        cycle=stale,
    )
    assert board.cycle == ScoringCycle(date(2026, 6, 10), date(2027, 6, 9))
    assert not board.may_drive
    assert board.limit_reason_text is not None and "满分" in board.limit_reason_text[0]
