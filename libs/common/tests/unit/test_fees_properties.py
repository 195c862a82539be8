"""Property tests of the R-PAY-2 late fee (cqcommon.fees): the rule holds for every fine,
decision date and day, not only the examples in test_fees_and_scoring.py, and the day
turns at Asia/Shanghai midnight whatever zone "now" is given in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from cqcommon.clock import SHANGHAI
from cqcommon.fees import (
    DUE_AFTER_DAYS,
    LATE_FEE_PERCENT_PER_DAY,
    amount_due,
    amount_due_at,
    due_date,
    late_fee_fen,
)
from hypothesis import given
from hypothesis import strategies as st

# fines up to 100,000 yuan (far above any traffic fine) and decisions over three decades
fines = st.integers(min_value=0, max_value=10_000_000)
decision_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))
# days from the decision date to "today": before it, within the 15 days, and long after
offsets = st.integers(min_value=-30, max_value=2_000)


@given(fines, decision_dates, st.integers(min_value=-30, max_value=DUE_AFTER_DAYS))
def test_nothing_late_through_the_fifteenth_day_r_pay_2(
    fine: int, decided: date, offset: int
) -> None:
    """R-PAY-2: from the decision to the due date inclusive only the fine is owed."""
    owed = amount_due(fine, decided, decided + timedelta(days=offset))
    assert owed.days_late == 0
    assert owed.late_fee_fen == 0
    assert owed.total_fen == fine
    assert owed.due_date == decided + timedelta(days=DUE_AFTER_DAYS) == due_date(decided)


@given(fines, decision_dates, st.integers(min_value=1, max_value=2_000))
def test_three_percent_a_day_from_day_sixteen_rounded_down_r_pay_2(
    fine: int, decided: date, days_late: int
) -> None:
    """R-PAY-2: k days after the due date the fee is floor(3 % x k x fine), at most the fine."""
    today = decided + timedelta(days=DUE_AFTER_DAYS + days_late)
    owed = amount_due(fine, decided, today)
    assert owed.days_late == days_late
    assert owed.late_fee_fen == min(fine, fine * LATE_FEE_PERCENT_PER_DAY * days_late // 100)
    # rounded down, never up: the exact fee in hundredths of a fen is never below it
    assert owed.late_fee_fen * 100 <= fine * LATE_FEE_PERCENT_PER_DAY * days_late


@given(fines, decision_dates, offsets)
def test_never_above_the_fine_and_at_most_twice_in_all_r_pay_2(
    fine: int, decided: date, offset: int
) -> None:
    """R-PAY-2: the late fee is capped at the fine, so the total is at most 2 x fine."""
    owed = amount_due(fine, decided, decided + timedelta(days=offset))
    assert 0 <= owed.late_fee_fen <= fine
    assert fine <= owed.total_fen <= 2 * fine
    assert owed.fine_fen == fine


@given(fines, decision_dates, offsets, offsets)
def test_monotone_in_today_r_pay_2(fine: int, decided: date, a: int, b: int) -> None:
    """R-PAY-2: waiting never makes a decision cheaper."""
    earlier, later = sorted((a, b))
    owed_earlier = amount_due(fine, decided, decided + timedelta(days=earlier))
    owed_later = amount_due(fine, decided, decided + timedelta(days=later))
    assert owed_earlier.late_fee_fen <= owed_later.late_fee_fen
    assert owed_earlier.total_fen <= owed_later.total_fen


@given(fines, st.integers(min_value=0, max_value=2_000))
def test_late_fee_function_is_monotone_and_capped_r_pay_2(fine: int, days: int) -> None:
    """R-PAY-2: late_fee_fen itself, one day more never costs less and never tops the fine."""
    assert late_fee_fen(fine, days) <= late_fee_fen(fine, days + 1) <= fine


@given(fines, st.integers(max_value=0))
def test_no_fee_for_zero_or_negative_days_r_pay_2(fine: int, days: int) -> None:
    assert late_fee_fen(fine, days) == 0


# -- the day turns at Asia/Shanghai midnight -----------------------------------------------
DECIDED = date(2026, 3, 1)  # due 16 March; 17 March is the first day with a late fee
DUE = date(2026, 3, 16)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI)


def test_last_second_of_the_due_date_costs_the_fine_only_r_pay_2() -> None:
    """R-PAY-2: 23:59:59 local on the due date is still day 15: no late fee."""
    owed = amount_due_at(20_000, DECIDED, _local(DUE, time(23, 59, 59, 999_999)))
    assert (owed.days_late, owed.late_fee_fen, owed.total_fen) == (0, 0, 20_000)


def test_local_midnight_after_the_due_date_starts_the_late_fee_r_pay_2() -> None:
    """R-PAY-2: 00:00:00 local the next day is day 16: 3 % of the fine."""
    owed = amount_due_at(20_000, DECIDED, _local(DUE + timedelta(days=1), time(0, 0)))
    assert (owed.days_late, owed.late_fee_fen, owed.total_fen) == (1, 600, 20_600)


def test_sixteen_hundred_utc_is_already_the_next_local_day_r_pay_2() -> None:
    """R-PAY-2: 16:00 UTC is 00:00 in Asia/Shanghai (UTC+8), so the fee starts then,
    while 15:59:59 UTC is still the due date."""
    before = amount_due_at(20_000, DECIDED, datetime(2026, 3, 16, 15, 59, 59, tzinfo=UTC))
    at = amount_due_at(20_000, DECIDED, datetime(2026, 3, 16, 16, 0, tzinfo=UTC))
    assert before.late_fee_fen == 0
    assert at.late_fee_fen == 600
    # the same instant given in another zone counts the same local day
    new_york = timezone(timedelta(hours=-4))
    elsewhere = amount_due_at(20_000, DECIDED, datetime(2026, 3, 16, 12, 0, tzinfo=new_york))
    assert elsewhere == at


def test_amount_due_at_refuses_a_naive_datetime_r_pay_2() -> None:
    """R-PAY-2: a naive "now" would be read in the server's zone; it is refused."""
    with pytest.raises(ValueError):
        amount_due_at(20_000, DECIDED, datetime(2026, 3, 16, 23, 59))


@given(
    fines,
    decision_dates,
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2036, 12, 31),
        timezones=st.just(UTC),
    ),
)
def test_amount_due_at_is_amount_due_on_the_shanghai_date_r_pay_2(
    fine: int, decided: date, now: datetime
) -> None:
    """R-PAY-2: for any instant, the amount is that of its Asia/Shanghai calendar day."""
    assert amount_due_at(fine, decided, now) == amount_due(
        fine, decided, now.astimezone(SHANGHAI).date()
    )
