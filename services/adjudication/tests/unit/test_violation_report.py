"""Recording rules for incoming violation records (pure, no I/O; the clock is pinned)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cqadjudication.domain.violations import RecordingWindow, validate_report
from cqcommon.clock import FixedClock
from cqcommon.errors import DomainError

#: 2026-11-20 12:00 in Asia/Shanghai
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
WINDOW = RecordingWindow(clock_skew=timedelta(seconds=300), floor_date=date(2000, 1, 1))
DECISION_NO = "5001129000000001"


def report_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": "cam-1",
        "plate_type": "02",
        "plate_number": "渝a12345",
        "licence_no": None,
        "violation_code": "1625",
        # 2026-11-01 08:30 in Asia/Shanghai
        "occurred_at": datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
        "decision_no": None,
        "decision_date": None,
        "clock": FixedClock(NOW),
        "window": WINDOW,
    }
    return args | overrides


def refusal(**overrides: Any) -> DomainError:
    with pytest.raises(DomainError) as err:
        validate_report(**report_args(**overrides))
    return err.value


def test_points_come_from_the_codes_second_digit() -> None:
    """R-ADJ-3 / glossary: a code's points are its second digit (1625 → 6, 1039 → 0)."""
    assert validate_report(**report_args(violation_code="1625")).points == 6
    assert validate_report(**report_args(violation_code="1039")).points == 0


def test_camera_record_starts_unhandled_and_plate_is_normalised() -> None:
    report = validate_report(**report_args())
    assert report.initial_status == "unhandled"
    assert report.plate_number == "渝A12345"


def test_on_site_record_needs_a_decision() -> None:
    """DOMAIN.md "Self-service handling": on-site cases arrive with a decision."""
    err = refusal(source="on_site")
    assert err.code == "DECISION_REQUIRED"
    assert err.details == {"field": "decision_no"}


def test_undecided_general_procedure_non_site_record_is_accepted_unhandled() -> None:
    """DOMAIN.md "Self-service handling": a non-site violation that needs the general
    procedure (a fine over 200 yuan) arrives without a decision and stays unhandled
    (SANDBOX.md: 张伟's SBX-ZW-03, 500 yuan)."""
    report = validate_report(**report_args(procedure="general", fine_fen=50_000))
    assert report.decision_no is None and report.decision_date is None
    assert report.initial_status == "unhandled"


@pytest.mark.parametrize(
    "overrides",
    [
        {"source": "on_site"},
        {"source": "non_site", "procedure": "general", "fine_fen": 50_000},
        {"source": "non_site", "procedure": "simple"},
    ],
    ids=["on-site", "non-site-general-decided", "non-site-simple-decided"],
)
def test_a_record_with_a_decision_starts_handled_unpaid(overrides: dict[str, Any]) -> None:
    """DOMAIN.md: decided records (on-site, or already decided by an officer) are only paid."""
    report = validate_report(
        **report_args(**overrides, decision_no=DECISION_NO, decision_date=date(2026, 11, 2))
    )
    assert report.initial_status == "handled_unpaid"
    assert (report.decision_no, report.decision_date) == (DECISION_NO, date(2026, 11, 2))


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        ({"decision_no": DECISION_NO}, "decision_date"),
        ({"decision_date": date(2026, 11, 2)}, "decision_no"),
        ({"decision_date": date(2026, 11, 2), "source": "on_site"}, "decision_no"),
    ],
    ids=["number-without-date", "date-without-number", "on-site-date-without-number"],
)
def test_a_decision_is_its_number_and_its_date_or_neither(
    decision: dict[str, Any], field: str
) -> None:
    """DOMAIN.md: a record that claims a decision carries its number and date; one that does
    not carries neither (a date without a number is refused, not silently dropped)."""
    err = refusal(**decision)
    assert err.code == "DECISION_INCOMPLETE"
    assert err.details == {"field": field}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # occurred_at: not in the future beyond the skew, not before the floor date
        ({"occurred_at": NOW + timedelta(seconds=301)}, "OCCURRED_AT_IN_FUTURE"),
        ({"occurred_at": NOW + timedelta(days=365)}, "OCCURRED_AT_IN_FUTURE"),
        ({"occurred_at": datetime(1999, 12, 31, 15, 59, tzinfo=UTC)}, "OCCURRED_AT_TOO_EARLY"),
        ({"occurred_at": datetime(1, 1, 1, tzinfo=UTC)}, "OCCURRED_AT_TOO_EARLY"),
        # the decision: dated between the violation's day and today (Asia/Shanghai)
        (
            {"decision_no": DECISION_NO, "decision_date": date(2026, 10, 31)},
            "DECISION_DATE_BEFORE_VIOLATION",
        ),
        (  # 2026-11-02 01:00 in Shanghai: a decision of 11-01 predates it (UTC says 11-01)
            {
                "occurred_at": datetime(2026, 11, 1, 17, 0, tzinfo=UTC),
                "decision_no": DECISION_NO,
                "decision_date": date(2026, 11, 1),
            },
            "DECISION_DATE_BEFORE_VIOLATION",
        ),
        (
            {"decision_no": DECISION_NO, "decision_date": date(1, 1, 1)},
            "DECISION_DATE_BEFORE_VIOLATION",
        ),
        (
            {"decision_no": DECISION_NO, "decision_date": date(2026, 11, 21)},
            "DECISION_DATE_IN_FUTURE",
        ),
        ({"decision_no": "12345", "decision_date": date(2026, 11, 2)}, "INVALID_DECISION_NO"),
        # malformed fields
        ({"fine_fen": 0}, "INVALID_FINE"),
        ({"fine_fen": -100}, "INVALID_FINE"),
        ({"occurred_at": datetime(2026, 11, 1, 8, 30)}, "INVALID_VIOLATION_RECORD"),
        ({"occurred_at": None}, "INVALID_VIOLATION_RECORD"),
        ({"source": "drone"}, "INVALID_VIOLATION_RECORD"),
        ({"procedure": ""}, "INVALID_VIOLATION_RECORD"),
        ({"source_record_id": "  "}, "INVALID_VIOLATION_RECORD"),
        ({"plate_number": "京A1234"}, "INVALID_PLATE_NUMBER"),
        ({"violation_code": "12"}, "INVALID_VIOLATION_CODE"),
        # forbidden characters in what reaches adjudication over gRPC (cqcommon.text)
        ({"place": "重庆市\x00渝中区"}, "INVALID_CHARACTERS"),
        ({"place": "重庆市\u202e渝中区"}, "INVALID_CHARACTERS"),
        ({"source_record_id": "cam\u200b-1"}, "INVALID_CHARACTERS"),
        ({"source_system": "camera\nnet"}, "INVALID_CHARACTERS"),
        ({"licence_no": "50010119900101123\x07"}, "INVALID_CHARACTERS"),
    ],
)
def test_bad_records_get_a_stable_code(overrides: dict[str, Any], code: str) -> None:
    """R-ERR-1: every malformed or implausible record is refused with a stable error code."""
    assert refusal(**overrides).code == code


@pytest.mark.parametrize(
    "overrides",
    [
        {"occurred_at": NOW + timedelta(seconds=300)},  # within the clock-skew allowance
        {"occurred_at": datetime(1999, 12, 31, 16, 0, tzinfo=UTC)},  # 2000-01-01 in Shanghai
        # a decision on the violation's own Shanghai day (UTC is still the day before)
        {
            "occurred_at": datetime(2026, 10, 31, 17, 0, tzinfo=UTC),
            "decision_no": DECISION_NO,
            "decision_date": date(2026, 11, 1),
        },
        # a decision dated today in Shanghai, while UTC is still yesterday
        {
            "decision_no": DECISION_NO,
            "decision_date": date(2026, 11, 21),
            "clock": FixedClock(datetime(2026, 11, 20, 16, 30, tzinfo=UTC)),
        },
    ],
    ids=["skew", "floor-day", "decided-same-day", "decided-today-shanghai"],
)
def test_the_limits_themselves_are_accepted(overrides: dict[str, Any]) -> None:
    """R-ERR-1: the plausibility limits are inclusive and counted in Asia/Shanghai days."""
    validate_report(**report_args(**overrides))


def test_fingerprint_tells_a_replay_from_a_changed_resend() -> None:
    first = validate_report(**report_args())
    assert validate_report(**report_args()).fingerprint() == first.fingerprint()
    assert validate_report(**report_args(fine_fen=10_000)).fingerprint() != first.fingerprint()
