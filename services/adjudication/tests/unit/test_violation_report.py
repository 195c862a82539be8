"""Recording rules for incoming violation records (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from cqadjudication.domain.violations import validate_report
from cqcommon.errors import DomainError


def report_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": "cam-1",
        "plate_type": "02",
        "plate_number": "渝a12345",
        "licence_no": None,
        "violation_code": "1625",
        "occurred_at": datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
        "decision_no": None,
        "decision_date": None,
    }
    return args | overrides


def test_points_come_from_the_codes_second_digit() -> None:
    """R-ADJ-3 / glossary: a code's points are its second digit (1625 → 6, 1039 → 0)."""
    assert validate_report(**report_args(violation_code="1625")).points == 6
    assert validate_report(**report_args(violation_code="1039")).points == 0


def test_camera_record_starts_unhandled_and_plate_is_normalised() -> None:
    report = validate_report(**report_args())
    assert report.initial_status == "unhandled"
    assert report.plate_number == "渝A12345"


@pytest.mark.parametrize(
    "overrides",
    [{"source": "on_site"}, {"procedure": "general"}],
    ids=["on-site", "general-procedure"],
)
def test_decided_kinds_need_a_decision(overrides: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as err:
        validate_report(**report_args(**overrides))
    assert err.value.code == "DECISION_REQUIRED"


def test_on_site_record_with_decision_starts_handled_unpaid() -> None:
    report = validate_report(
        **report_args(
            source="on_site", decision_no="5001129000000001", decision_date=date(2026, 11, 2)
        )
    )
    assert report.initial_status == "handled_unpaid"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"fine_fen": 0}, "INVALID_FINE"),
        ({"fine_fen": -100}, "INVALID_FINE"),
        ({"occurred_at": datetime(2026, 11, 1, 8, 30)}, "INVALID_VIOLATION_RECORD"),
        ({"source": "drone"}, "INVALID_VIOLATION_RECORD"),
        ({"source_record_id": "  "}, "INVALID_VIOLATION_RECORD"),
        ({"plate_number": "京A1234"}, "INVALID_PLATE_NUMBER"),
        ({"violation_code": "12"}, "INVALID_VIOLATION_CODE"),
    ],
)
def test_bad_records_get_a_stable_code(overrides: dict[str, Any], code: str) -> None:
    """R-ERR-1: every malformed record is refused with a stable error code."""
    with pytest.raises(DomainError) as err:
        validate_report(**report_args(**overrides))
    assert err.value.code == code


def test_fingerprint_tells_a_replay_from_a_changed_resend() -> None:
    first = validate_report(**report_args())
    assert validate_report(**report_args()).fingerprint() == first.fingerprint()
    assert validate_report(**report_args(fine_fen=10_000)).fingerprint() != first.fingerprint()
