"""Record-level online-handling rules (DOMAIN.md "Self-service handling", R-ADJ-9), pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cqadjudication.domain.eligibility import record_eligibility
from cqadjudication.domain.violations import Violation
from cqcommon.identifiers import PlateType


def violation(**overrides: Any) -> Violation:
    """A non-site, simple-procedure, undisputed, unhandled violation of 200 yuan."""
    v = Violation(
        violation_id="7f1d4c1e-0000-4000-8000-000000000001",
        source_system="camera-net",
        source_record_id="cam-1",
        vehicle_id="7f1d4c1e-0000-4000-8000-000000000002",
        plate_type=PlateType.SMALL_CAR,
        plate_number="渝A12345",
        licence_id=None,
        violation_code="1345",
        description_zh="机动车违反禁令标志指示的",
        occurred_at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        place="重庆市渝中区解放碑",
        fine_fen=20_000,
        points=3,
        source="non_site",
        procedure="simple",
        status="unhandled",
        decision_no=None,
        decision_date=None,
        disputed=False,
    )
    return dataclasses.replace(v, **overrides)


DECIDED = {"decision_no": "5001129000000001", "decision_date": date(2026, 11, 2)}


def test_sandbox_sbx_zw_03_general_procedure_goes_to_the_counter() -> None:
    """DOMAIN.md "Self-service handling" / SANDBOX.md: 张伟's SBX-ZW-03 (non-site, 500 yuan,
    no decision) needs the general procedure: refused online, route counter, a sentence in
    Chinese and English naming the counter."""
    answer = record_eligibility(
        violation(source_record_id="SBX-ZW-03", fine_fen=50_000, procedure="general")
    )
    assert (answer.availability, answer.route) == ("refused", "counter")
    assert answer.reason.code == "GENERAL_PROCEDURE_COUNTER_ONLY"
    assert "窗口" in answer.reason.zh and "counter" in answer.reason.en


@pytest.mark.parametrize(
    "overrides",
    [{"fine_fen": 20_001}, {"procedure": "general"}, {"fine_fen": 50_000}],
    ids=["201-yuan-simple", "general-200-yuan", "500-yuan"],
)
def test_general_procedure_rule_over_200_yuan_is_counter_only(overrides: dict[str, Any]) -> None:
    """DOMAIN.md: only fines ≤ 200 yuan (inclusive) by simple procedure can be handled online."""
    answer = record_eligibility(violation(**overrides))
    assert (answer.availability, answer.route, answer.reason.code) == (
        "refused",
        "counter",
        "GENERAL_PROCEDURE_COUNTER_ONLY",
    )


def test_r_adj_9_disputed_violation_is_refused_naming_the_counter() -> None:
    """R-ADJ-9: a disputed violation cannot be handled online; the answer names the counter,
    even when the record is also decided (a dispute blocks payment too)."""
    for overrides in ({}, {"status": "handled_unpaid", **DECIDED}, {"fine_fen": 50_000}):
        answer = record_eligibility(violation(disputed=True, **overrides))
        assert (answer.availability, answer.route) == ("refused", "counter")
        assert answer.reason.code == "DISPUTED_COUNTER_ONLY"
        assert "窗口" in answer.reason.zh and "counter" in answer.reason.en


@pytest.mark.parametrize(
    ("overrides", "route", "code"),
    [
        ({"status": "handled_unpaid", **DECIDED}, "payment", "ALREADY_DECIDED"),
        (
            {"status": "handled_unpaid", "source": "on_site", **DECIDED},
            "payment",
            "ALREADY_DECIDED",
        ),
        ({"status": "paid", **DECIDED}, "", "ALREADY_PAID"),
        ({"source": "on_site"}, "counter", "ON_SITE_NOT_ONLINE"),
    ],
    ids=["decided-unpaid", "on-site-decided", "paid", "on-site-undecided"],
)
def test_decided_and_on_site_records_are_refused_with_their_route(
    overrides: dict[str, Any], route: str, code: str
) -> None:
    """DOMAIN.md: on-site and decided cases are only paid; nothing handles them online."""
    answer = record_eligibility(violation(**overrides))
    assert (answer.availability, answer.route, answer.reason.code) == ("refused", route, code)
    assert answer.reason.zh and answer.reason.en


@pytest.mark.parametrize("fine_fen", [100, 20_000], ids=["1-yuan", "200-yuan-inclusive"])
def test_what_passes_the_record_rules_is_not_yet_determined(fine_fen: int) -> None:
    """The per-person rules (R-ADJ-1..6) are not decided here: never a guessed "allowed"."""
    answer = record_eligibility(violation(fine_fen=fine_fen))
    assert (answer.availability, answer.route) == ("unknown", "")
    assert answer.reason.code == "ELIGIBILITY_NOT_AVAILABLE"
