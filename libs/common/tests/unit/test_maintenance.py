"""Unit tests of the R-PAY-6 maintenance window (cqcommon.maintenance): its boundaries
in Asia/Shanghai, the Retry-After seconds, other zones and naive datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from cqcommon.clock import SHANGHAI
from cqcommon.maintenance import (
    DEFAULT_WINDOW,
    WINDOW_END,
    WINDOW_START,
    MaintenanceWindow,
    in_maintenance_window,
    retry_after_s,
    window_ends_at,
)
from hypothesis import given
from hypothesis import strategies as st

DAY = date(2026, 11, 20)
NEXT = DAY + timedelta(days=1)


def _at(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=SHANGHAI)


def test_defaults_are_twenty_two_to_half_past_midnight_r_pay_6() -> None:
    """R-PAY-6: the window is 22:00–00:30 unless settings say otherwise."""
    assert (time(22, 0), time(0, 30)) == (WINDOW_START, WINDOW_END)
    assert (DEFAULT_WINDOW.start, DEFAULT_WINDOW.end) == (WINDOW_START, WINDOW_END)
    assert DEFAULT_WINDOW.crosses_midnight


def test_21_59_59_is_open_r_pay_6() -> None:
    """R-PAY-6: one second before 22:00 payments are still accepted."""
    now = _at(DAY, 21, 59, 59, 999_999)
    assert not in_maintenance_window(now)
    assert retry_after_s(now) == 0


def test_22_00_00_is_closed_until_00_30_r_pay_6() -> None:
    """R-PAY-6: at 22:00:00 the window opens; Retry-After points to 00:30 (2.5 h)."""
    now = _at(DAY, 22, 0)
    assert in_maintenance_window(now)
    assert window_ends_at(now) == _at(NEXT, 0, 30)
    assert retry_after_s(now) == 9_000


def test_midnight_is_inside_the_window_r_pay_6() -> None:
    """R-PAY-6: the window crosses midnight; at 00:00 it ends at 00:30 the same day."""
    now = _at(NEXT, 0, 0)
    assert in_maintenance_window(now)
    assert window_ends_at(now) == _at(NEXT, 0, 30)
    assert retry_after_s(now) == 1_800


def test_00_29_59_is_closed_with_retry_after_one_r_pay_6() -> None:
    """R-PAY-6: the last second of the window answers Retry-After 1."""
    now = _at(NEXT, 0, 29, 59)
    assert in_maintenance_window(now)
    assert retry_after_s(now) == 1
    # a fraction of a second left still rounds up to 1, never down to 0
    assert retry_after_s(_at(NEXT, 0, 29, 59, 999_999)) == 1


def test_retry_after_rounds_up_r_pay_6() -> None:
    """R-PAY-6: 1.5 s before 00:30 is 2 s, so a client retrying then is never early."""
    assert retry_after_s(_at(NEXT, 0, 29, 58, 500_000)) == 2


def test_00_30_00_is_open_again_r_pay_6() -> None:
    """R-PAY-6: at 00:30:00 payments are accepted again; the next end is tomorrow's."""
    now = _at(NEXT, 0, 30)
    assert not in_maintenance_window(now)
    assert retry_after_s(now) == 0
    assert window_ends_at(now) == _at(NEXT + timedelta(days=1), 0, 30)


def test_a_utc_instant_is_judged_in_asia_shanghai_r_pay_6() -> None:
    """R-PAY-6: 14:00 UTC is 22:00 in Chongqing; 16:30 UTC is 00:30; the end is returned
    in Asia/Shanghai and equals 16:30 UTC."""
    assert not in_maintenance_window(datetime(2026, 11, 20, 13, 59, 59, tzinfo=UTC))
    opened = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert in_maintenance_window(opened)
    assert retry_after_s(opened) == 9_000
    end = window_ends_at(opened)
    assert end == datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
    assert end.tzinfo is SHANGHAI
    assert not in_maintenance_window(datetime(2026, 11, 20, 16, 30, tzinfo=UTC))
    # 22:00 UTC is 06:00 local: open, whatever the UTC clock says
    assert not in_maintenance_window(datetime(2026, 11, 20, 22, 0, tzinfo=UTC))


def test_a_naive_datetime_is_refused_r_pay_6() -> None:
    """R-PAY-6: a naive datetime would be read in the server's zone; it is an error."""
    naive = datetime(2026, 11, 20, 22, 30)
    for fn in (in_maintenance_window, window_ends_at, retry_after_s):
        with pytest.raises(ValueError):
            fn(naive)


def test_a_window_from_settings_r_pay_6() -> None:
    """R-PAY-6: settings may move the window; one within a day works too."""
    window = MaintenanceWindow.parse("23:00-00:15")
    assert window == MaintenanceWindow(time(23, 0), time(0, 15))
    assert in_maintenance_window(_at(NEXT, 0, 14, 59), window)
    assert not in_maintenance_window(_at(DAY, 22, 30), window)
    daytime = MaintenanceWindow.parse("02:00:00 - 03:00:00")
    assert not daytime.crosses_midnight
    assert daytime.contains(_at(DAY, 2, 0)) and not daytime.contains(_at(DAY, 3, 0))
    assert daytime.retry_after_s(_at(DAY, 2, 0)) == 3_600
    assert daytime.ends_at(_at(DAY, 3, 0)) == _at(NEXT, 3, 0)


@pytest.mark.parametrize("text", ["22:00", "22:00-22:00", "25:00-00:30", ""])
def test_a_malformed_or_empty_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        MaintenanceWindow.parse(text)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2036, 12, 31), timezones=st.just(UTC)
    )
)
def test_retry_after_agrees_with_the_window_r_pay_6(now: datetime) -> None:
    """R-PAY-6: inside, Retry-After is 1..9000 s and lands at or after the window's end
    (no earlier than 00:30); outside, it is 0."""
    seconds = retry_after_s(now)
    if in_maintenance_window(now):
        assert 1 <= seconds <= 9_000
        end = window_ends_at(now)
        assert end.astimezone(SHANGHAI).time() == time(0, 30)
        assert now + timedelta(seconds=seconds) >= end > now
        assert now + timedelta(seconds=seconds - 1) < end
        assert not in_maintenance_window(end)
    else:
        assert seconds == 0
