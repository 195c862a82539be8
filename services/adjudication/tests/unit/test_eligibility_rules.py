"""The eligibility engine's rule tables (R-ADJ-1..4, 6, 9, R-X-2; DOMAIN.md "Self-service
handling"), pure: one row per rule and boundary, each naming its rule id."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from types import EllipsisType
from typing import Any

import pytest
from cqadjudication.domain.eligibility import (
    Assessment,
    CycleUsage,
    EligibilityRules,
    HandlerLicence,
    Reason,
    Relation,
    assess,
    needs_cycle_usage,
)
from cqadjudication.domain.violations import Violation
from cqcommon.errors import CATALOGUE, DomainError, ErrorKind
from cqcommon.identifiers import PlateType, points_of_code
from cqcommon.settings import Settings

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
OWNER = "person-owner"
OTHER = "person-other"
VEHICLE = "vehicle-1"
RULES = EligibilityRules()


def violation(code: str = "1345", **overrides: Any) -> Violation:
    """A non-site, simple-procedure, undisputed, unhandled violation of ``VEHICLE``, 200 yuan;
    its points follow its code (second digit)."""
    v = Violation(
        violation_id="7f1d4c1e-0000-4000-8000-000000000001",
        source_system="camera-net",
        source_record_id="cam-1",
        vehicle_id=VEHICLE,
        plate_type=PlateType.SMALL_CAR,
        plate_number="渝A12345",
        licence_id=None,
        violation_code=code,
        description_zh="机动车违反禁令标志指示的",
        occurred_at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        place="重庆市渝中区解放碑",
        fine_fen=20_000,
        points=points_of_code(code),
        source="non_site",
        procedure="simple",
        status="unhandled",
        decision_no=None,
        decision_date=None,
        disputed=False,
    )
    return dataclasses.replace(v, **overrides)


def licence(person_id: str = OWNER, **overrides: Any) -> HandlerLicence:
    """A valid C1 licence with 0 points and no outside change."""
    base = HandlerLicence(
        licence_id=f"licence-of-{person_id}",
        person_id=person_id,
        licence_class="C1",
        status="valid",
        points=0,
        cycle_start=date(2026, 3, 1),
        cycle_end=date(2027, 2, 28),
        external_change_at=None,
    )
    return dataclasses.replace(base, **overrides)


def ask(
    v: Violation | None = None,
    *,
    handler: str = OWNER,
    lic: HandlerLicence | EllipsisType | None = ...,
    relation: Relation = "owner",
    usage: CycleUsage | None = None,
    rules: EligibilityRules = RULES,
) -> Assessment:
    """``assess`` with defaults: the owner handles a 3-point violation of their own car."""
    return assess(
        violation=v or violation(),
        owner_person_id=OWNER,
        handler_person_id=handler,
        licence=licence(handler) if isinstance(lic, EllipsisType) else lic,
        relation=relation,
        usage=usage or CycleUsage(),
        now=NOW,
        rules=rules,
    )


def codes(a: Assessment) -> list[str]:
    return [r.code for r in a.reasons]


def refused(a: Assessment, route: str, *expected: str) -> None:
    assert (a.availability, a.route, codes(a)) == ("refused", route, list(expected))


def allowed(a: Assessment, route: str) -> None:
    assert (a.availability, a.route, a.reasons) == ("allowed", route, ())


# -- R-ADJ-1: own licence, own vehicle --------------------------------------------------
@pytest.mark.parametrize("code", ["1039", "1345"], ids=["0-point", "3-point"])
def test_r_adj_1_own_vehicle_non_site_is_handled_by_the_handler_alone(code: str) -> None:
    """R-ADJ-1: with or without points, the owner's own face is the only step."""
    allowed(ask(violation(code)), "handler")


@pytest.mark.parametrize(
    ("fine_fen", "procedure", "expected"),
    [
        (20_000, "simple", None),
        (20_001, "simple", "GENERAL_PROCEDURE_COUNTER_ONLY"),
        (20_100, "simple", "GENERAL_PROCEDURE_COUNTER_ONLY"),
        (10_000, "general", "GENERAL_PROCEDURE_COUNTER_ONLY"),
    ],
    ids=["200-yuan-inclusive", "200.01-yuan", "201-yuan", "general-procedure-100-yuan"],
)
def test_r_adj_1_fine_boundary_200_vs_201_yuan_and_general_procedure(
    fine_fen: int, procedure: str, expected: str | None
) -> None:
    """R-ADJ-1 / DOMAIN.md: fine ≤ 200 yuan by simple procedure online; beyond it the counter
    (which issues the general-procedure decision)."""
    answer = ask(violation(fine_fen=fine_fen, procedure=procedure))
    if expected is None:
        allowed(answer, "handler")
    else:
        refused(answer, "counter", expected)


def test_r_adj_1_a_lowered_online_fine_limit_refuses_with_its_own_reason() -> None:
    """R-ADJ-1 *(config)*: below a configured online limit of 100 yuan a 150-yuan simple
    case is refused for the limit, not as a general-procedure case."""
    rules = dataclasses.replace(RULES, online_fine_limit_fen=10_000)
    allowed(ask(violation(fine_fen=10_000), rules=rules), "handler")
    refused(ask(violation(fine_fen=15_000), rules=rules), "counter", "FINE_OVER_ONLINE_LIMIT")


@pytest.mark.parametrize(
    ("points_before", "code", "expected"),
    [
        (9, "1345", None),  # 9 + 3 = 12: at the limit is allowed (李娜's 3-point one)
        (10, "1345", "POINTS_LIMIT_EXCEEDED"),  # 10 + 3 = 13
        (9, "1625", "POINTS_LIMIT_EXCEEDED"),  # 9 + 6 = 15 (李娜's 6-point one)
        (6, "1625", None),  # 6 + 6 = 12
        (12, "1039", None),  # a 0-point handling adds nothing
    ],
    ids=["9+3=12", "10+3=13", "9+6=15", "6+6=12", "12+0"],
)
def test_r_adj_1_points_after_handling_12_vs_13(
    points_before: int, code: str, expected: str | None
) -> None:
    """R-ADJ-1: the handler's points after handling may not exceed 12 (inclusive)."""
    answer = ask(violation(code), lic=licence(points=points_before))
    if expected is None:
        allowed(answer, "handler")
    else:
        refused(answer, "", expected)


def test_r_adj_1_the_points_limit_is_configurable() -> None:
    """R-ADJ-1 *(config: 12)*: the limit comes from the rules, not a literal."""
    rules = dataclasses.replace(RULES, points_limit=6)
    allowed(ask(violation("1345"), lic=licence(points=3), rules=rules), "handler")
    refused(ask(violation("1345"), lic=licence(points=4), rules=rules), "", "POINTS_LIMIT_EXCEEDED")


# -- R-ADJ-2: A/B-class licences --------------------------------------------------------
@pytest.mark.parametrize(
    ("licence_class", "ab"),
    [
        ("A1", True),
        ("A2", True),
        ("A3", True),
        ("B1", True),
        ("B2", True),
        ("A2E", True),
        ("C1E", False),
        ("C1", False),
        ("C2", False),
        ("D", False),
    ],
)
@pytest.mark.parametrize("code", ["1039", "1625"], ids=["0-point", "6-point"])
def test_r_adj_2_a_b_class_refused_point_bearing_allowed_0_point(
    licence_class: str, ab: bool, code: str
) -> None:
    """R-ADJ-2: A/B-class holders (any class starting with A or B) may not handle
    point-bearing violations online; 0-point ones they may; C1 may both."""
    answer = ask(violation(code), lic=licence(licence_class=licence_class))
    if ab and code == "1625":
        refused(answer, "counter", "AB_CLASS_POINTS_COUNTER_ONLY")
    else:
        allowed(answer, "handler")


def test_r_adj_2_an_unreadable_licence_class_is_treated_as_a_b() -> None:
    """R-ADJ-2: a class entry that does not parse is not assumed harmless: the counter
    reads the licence itself."""
    refused(
        ask(violation("1625"), lic=licence(licence_class="Z9")),
        "counter",
        "AB_CLASS_POINTS_COUNTER_ONLY",
    )


# -- R-ADJ-3 / R-ADJ-4: another's vehicle ----------------------------------------------
@pytest.mark.parametrize("relation", ["follower", "proven", "owner"])
@pytest.mark.parametrize(
    ("code", "route"),
    [("1039", "handler"), ("1625", "owner_then_handler")],
    ids=["1039-0-point-r-adj-3", "1625-6-point-r-adj-4"],
)
def test_r_adj_3_and_4_another_s_vehicle_code_1039_vs_1625(
    relation: Relation, code: str, route: str
) -> None:
    """R-ADJ-3: a 0-point violation of another's vehicle, for anyone who owns, follows or
    proved it: the handler's face only. R-ADJ-4: a point-bearing one needs the owner's
    consent by face first, then the handler's."""
    allowed(ask(violation(code), handler=OTHER, relation=relation), route)


def test_r_adj_4_points_go_on_the_handler_s_licence_so_its_limit_is_checked() -> None:
    """R-ADJ-4: the handler's own points decide (刘洋 at 0 takes 6; at 7 he would pass 12)."""
    allowed(
        ask(violation("1625"), handler=OTHER, relation="follower", lic=licence(OTHER, points=6)),
        "owner_then_handler",
    )
    refused(
        ask(violation("1625"), handler=OTHER, relation="follower", lic=licence(OTHER, points=7)),
        "",
        "POINTS_LIMIT_EXCEEDED",
    )


@pytest.mark.parametrize("code", ["1039", "1625"])
def test_r_adj_3_not_related_to_another_s_vehicle_is_refused(code: str) -> None:
    """R-ADJ-3/4: someone who neither owns, follows nor proved the vehicle may not handle
    its violations (the UI never offers it; the API must refuse it too)."""
    refused(ask(violation(code), handler=OTHER, relation="none"), "", "NOT_RELATED_TO_VEHICLE")


def test_r_adj_1_ownership_comes_from_the_registry_copy_not_the_relation() -> None:
    """R-ADJ-1: the registered owner handles their own vehicle whatever relation the query
    service passed (its copy may lag)."""
    allowed(ask(violation("1625"), relation="none"), "handler")


# -- licences ----------------------------------------------------------------------------
def test_no_licence_is_refused_naming_the_counter() -> None:
    """R-ADJ-1/3/4 all need the handler's own licence (decisions and points go on it)."""
    for code in ("1039", "1625"):
        refused(ask(violation(code), lic=None), "counter", "NO_LICENCE")


@pytest.mark.parametrize("status", ["suspended", "revoked", "over_points", "expired"])
def test_a_licence_that_is_not_valid_is_refused(status: str) -> None:
    """R-ADJ-1: handling online needs a valid licence."""
    refused(
        ask(violation("1039"), lic=licence(status=status)),
        "counter",
        "LICENCE_NOT_VALID_COUNTER_ONLY",
    )


def test_a_licence_of_someone_else_is_a_caller_bug() -> None:
    """The engine assesses the handler's own licence; anything else is a programming error."""
    with pytest.raises(ValueError, match="handler's own"):
        ask(lic=licence(OTHER))


# -- R-ADJ-6: points sync guard ---------------------------------------------------------
@pytest.mark.parametrize(
    ("ago", "code", "expected"),
    [
        (timedelta(hours=23), "1345", "POINTS_RECENTLY_CHANGED"),
        (timedelta(hours=23, minutes=59, seconds=59), "1345", "POINTS_RECENTLY_CHANGED"),
        (timedelta(hours=24), "1345", None),
        (timedelta(hours=25), "1345", None),
        (timedelta(hours=-1), "1345", "POINTS_RECENTLY_CHANGED"),
        (timedelta(hours=23), "1039", None),
    ],
    ids=["23h", "24h-minus-1s", "24h", "25h", "stamped-in-the-future", "23h-0-point"],
)
def test_r_adj_6_points_changed_by_another_channel_23h_vs_25h_ago(
    ago: timedelta, code: str, expected: str | None
) -> None:
    """R-ADJ-6: an outside points change in the last 24 h blocks point-bearing online
    handling (wait or go to a counter); 0-point handling is not blocked."""
    answer = ask(violation(code), lic=licence(external_change_at=NOW - ago))
    if expected is None:
        allowed(answer, "handler")
    else:
        refused(answer, "counter", expected)
        assert "counter" in answer.reasons[0].en and "窗口" in answer.reasons[0].zh


# -- record-level rules (DOMAIN.md, R-ADJ-9) --------------------------------------------
DECIDED: dict[str, Any] = {"decision_no": "5001129000000001", "decision_date": date(2026, 11, 2)}


@pytest.mark.parametrize(
    ("overrides", "route", "expected"),
    [
        ({"source": "on_site"}, "counter", ["ON_SITE_NOT_ONLINE"]),
        ({"disputed": True}, "counter", ["DISPUTED_COUNTER_ONLY"]),
        ({"status": "handled_unpaid", **DECIDED}, "payment", ["ALREADY_DECIDED"]),
        ({"status": "paid", **DECIDED}, "", ["ALREADY_PAID"]),
        (
            {"status": "handled_unpaid", "source": "on_site", **DECIDED},
            "payment",
            ["ALREADY_DECIDED"],
        ),
        (
            {"status": "handled_unpaid", "disputed": True, **DECIDED},
            "counter",
            ["DISPUTED_COUNTER_ONLY", "ALREADY_DECIDED"],
        ),
    ],
    ids=[
        "on-site",
        "r-adj-9-disputed",
        "already-handled-unpaid",
        "already-paid",
        "on-site-decided",
        "r-adj-9-disputed-and-decided",
    ],
)
def test_record_rules_on_site_disputed_and_already_handled(
    overrides: dict[str, Any], route: str, expected: list[str]
) -> None:
    """DOMAIN.md: on-site and decided records are not handled online (a decided one is
    paid); R-ADJ-9: a disputed one is refused naming the counter, even when decided."""
    refused(ask(violation(**overrides)), route, *expected)


def test_a_decided_record_reports_only_its_state_not_the_handling_rules() -> None:
    """A decided record has nothing left to handle: the handler's licence and relation are
    not assessed (the answer is "pay it", not a list of irrelevant refusals)."""
    decided = violation("1625", status="handled_unpaid", **DECIDED)
    refused(ask(decided, handler=OTHER, relation="none", lic=None), "payment", "ALREADY_DECIDED")


# -- R-X-2: points-buying guard ---------------------------------------------------------
def others(n: int) -> frozenset[str]:
    return frozenset(f"other-vehicle-{i}" for i in range(n))


def licences(n: int) -> frozenset[str]:
    return frozenset(f"other-licence-{i}" for i in range(n))


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (CycleUsage(vehicles_taken_for=others(2)), None),
        (CycleUsage(vehicles_taken_for=others(3)), "POINTS_BUYING_VEHICLE_LIMIT"),
        (CycleUsage(vehicles_taken_for=others(2) | {VEHICLE}), None),
        (CycleUsage(licences_on_vehicle=licences(2)), None),
        (CycleUsage(licences_on_vehicle=licences(3)), "POINTS_BUYING_LICENCE_LIMIT"),
        (CycleUsage(licences_on_vehicle=licences(2) | {"licence-of-person-other"}), None),
    ],
    ids=[
        "third-other-vehicle",
        "fourth-other-vehicle",
        "same-vehicle-again",
        "third-licence-on-vehicle",
        "fourth-licence-on-vehicle",
        "same-licence-again",
    ],
)
def test_r_x_2_third_vs_fourth_other_vehicle_and_licence_in_a_cycle(
    usage: CycleUsage, expected: str | None
) -> None:
    """R-X-2: one licence takes points for at most 3 other people's vehicles per cycle, and
    one vehicle's points go to at most 3 licences per cycle; the same vehicle or licence
    again is not a new one."""
    answer = ask(violation("1625"), handler=OTHER, relation="follower", usage=usage)
    if expected is None:
        allowed(answer, "owner_then_handler")
    else:
        refused(answer, "counter", expected)


def test_r_x_2_limits_are_configurable() -> None:
    """R-X-2 *(config: 3 and 3)*."""
    rules = dataclasses.replace(RULES, max_other_vehicles=1, max_licences_per_vehicle=5)
    usage = CycleUsage(vehicles_taken_for=others(1), licences_on_vehicle=licences(4))
    answer = ask(violation("1625"), handler=OTHER, relation="proven", usage=usage, rules=rules)
    refused(answer, "counter", "POINTS_BUYING_VEHICLE_LIMIT")


@pytest.mark.parametrize(
    ("handler", "code"), [(OWNER, "1625"), (OTHER, "1039")], ids=["own-vehicle", "0-point"]
)
def test_r_x_2_applies_only_to_points_taken_for_another_s_vehicle(handler: str, code: str) -> None:
    """R-X-2 guards points-buying: the owner's own points, and 0-point handlings, move no
    points between people."""
    usage = CycleUsage(vehicles_taken_for=others(3), licences_on_vehicle=licences(3))
    answer = ask(violation(code), handler=handler, relation="follower", usage=usage)
    assert answer.allowed


# -- several failing rules --------------------------------------------------------------
def test_a_refusal_lists_every_failing_rule_in_a_stable_order() -> None:
    """R-ADJ-1..4, 6, R-X-2: every failing rule is a reason, not only the first one; the
    route is the counter when any of them names it."""
    answer = ask(
        violation("1625", source="on_site", fine_fen=50_000, procedure="general"),
        handler=OTHER,
        relation="none",
        lic=licence(
            OTHER,
            licence_class="A2",
            status="suspended",
            points=10,
            external_change_at=NOW - timedelta(hours=1),
        ),
        usage=CycleUsage(vehicles_taken_for=others(3), licences_on_vehicle=licences(3)),
    )
    refused(
        answer,
        "counter",
        "ON_SITE_NOT_ONLINE",
        "GENERAL_PROCEDURE_COUNTER_ONLY",
        "LICENCE_NOT_VALID_COUNTER_ONLY",
        "NOT_RELATED_TO_VEHICLE",
        "AB_CLASS_POINTS_COUNTER_ONLY",
        "POINTS_LIMIT_EXCEEDED",
        "POINTS_RECENTLY_CHANGED",
        "POINTS_BUYING_VEHICLE_LIMIT",
        "POINTS_BUYING_LICENCE_LIMIT",
    )


def test_sandbox_personas() -> None:
    """SANDBOX.md: 王强 (A2, 0 points) is refused the point-bearing one and allowed the
    0-point one (R-ADJ-2); 李娜 (C1, 9 points) 3 points allowed, 6 refused (R-ADJ-1)."""
    wang = licence(licence_class="A2", points=0)
    refused(ask(violation("1625"), lic=wang), "counter", "AB_CLASS_POINTS_COUNTER_ONLY")
    allowed(ask(violation("1039"), lic=wang), "handler")
    li = licence(points=9)
    allowed(ask(violation("1345"), lic=li), "handler")
    refused(ask(violation("1625"), lic=li), "", "POINTS_LIMIT_EXCEEDED")


# -- reasons are the error table's codes ------------------------------------------------
def test_every_reason_is_an_error_code_of_the_one_table_with_its_texts() -> None:
    """Each reason's code and sentences are its ErrorSpec's: rule refusals are FORBIDDEN,
    state ones CONFLICT."""
    answer = ask(
        violation("1625", source="on_site", fine_fen=50_000),
        handler=OTHER,
        relation="none",
        lic=licence(OTHER, licence_class="B1", status="revoked", points=12),
    )
    state = ask(violation(status="paid", **DECIDED)).reasons
    assert len(answer.reasons) >= 5
    for reason in answer.reasons + state:
        spec = CATALOGUE[reason.code]
        assert reason == Reason.of(spec) and reason.zh and reason.en
    assert {CATALOGUE[r.code].kind for r in answer.reasons} == {ErrorKind.FORBIDDEN}
    assert CATALOGUE[state[0].code].kind is ErrorKind.CONFLICT


def test_a_refusal_raises_the_first_reason_with_all_reasons_and_the_route() -> None:
    """A refused StartHandling answers the first reason's code, every reason and the route."""
    answer = ask(violation("1625", fine_fen=50_000), lic=licence(licence_class="A1"))
    error = answer.refusal()
    assert isinstance(error, DomainError)
    assert (error.code, error.kind) == ("GENERAL_PROCEDURE_COUNTER_ONLY", ErrorKind.FORBIDDEN)
    assert error.details == {
        "route": "counter",
        "reasons": [
            {"code": r.code, "message_zh": r.zh, "message_en": r.en}
            for r in (answer.reasons[0], answer.reasons[1])
        ],
    }
    assert [r["code"] for r in error.details["reasons"]] == [
        "GENERAL_PROCEDURE_COUNTER_ONLY",
        "AB_CLASS_POINTS_COUNTER_ONLY",
    ]
    paid = ask(violation(status="handled_unpaid", **DECIDED)).refusal()
    assert (paid.code, paid.kind) == ("ALREADY_DECIDED", ErrorKind.CONFLICT)
    with pytest.raises(ValueError, match="no refusal"):
        ask().refusal()


def test_rules_come_from_settings() -> None:
    """The *(config)* numbers of R-ADJ-1, 6 and R-X-2 are settings; the engine's defaults
    are the settings' defaults."""
    s = Settings(
        points_limit=10,
        online_fine_limit_fen=15_000,
        points_sync_guard_hours=12,
        points_buying_max_vehicles=2,
        points_buying_max_licences=4,
    )
    assert EligibilityRules.from_settings(s) == EligibilityRules(
        points_limit=10,
        online_fine_limit_fen=15_000,
        sync_guard=timedelta(hours=12),
        max_other_vehicles=2,
        max_licences_per_vehicle=4,
    )
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert EligibilityRules() == EligibilityRules(
        points_limit=defaults["points_limit"],
        online_fine_limit_fen=defaults["online_fine_limit_fen"],
        sync_guard=timedelta(hours=defaults["points_sync_guard_hours"]),
        max_other_vehicles=defaults["points_buying_max_vehicles"],
        max_licences_per_vehicle=defaults["points_buying_max_licences"],
    )


# -- R-X-2: when the usage is read at all ------------------------------------------------
_FULL_USAGE = CycleUsage(
    vehicles_taken_for=frozenset({"v-a", "v-b", "v-c", "v-d"}),
    licences_on_vehicle=frozenset({"l-a", "l-b", "l-c", "l-d"}),
)


@pytest.mark.parametrize(
    ("code", "status", "handler", "relation", "needed"),
    [
        ("1345", "unhandled", OTHER, "follower", True),
        ("1345", "unhandled", OWNER, "owner", False),
        ("1039", "unhandled", OTHER, "follower", False),
        ("1345", "handled_unpaid", OTHER, "follower", False),
        ("1345", "paid", OTHER, "follower", False),
        ("1345", "unhandled", "", "none", False),
    ],
    ids=["others-3-point", "own-vehicle", "others-0-point", "handled", "paid", "no-person"],
)
def test_r_x_2_usage_is_needed_only_where_assess_reads_it(
    code: str, status: str, handler: str, relation: Relation, needed: bool
) -> None:
    """R-X-2: the cycle usage is read only for an open point-bearing violation of another
    person's vehicle; wherever it is not read, the fullest usage changes no answer."""
    v = violation(code, status=status)
    assert needs_cycle_usage(v, owner_person_id=OWNER, handler_person_id=handler) is needed
    lic = licence(handler) if handler else None
    empty = ask(v, handler=handler, lic=lic, relation=relation)
    full = ask(v, handler=handler, lic=lic, relation=relation, usage=_FULL_USAGE)
    assert (empty == full) is not needed
