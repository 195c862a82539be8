"""Unit tests of the registry's fixed data: the violation-code catalogue and the
SANDBOX.md roster (R-SBX-1), whose ids are listed literals no personal field gives back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from cqcommon import identifiers as ids
from cqregistry.domain.catalogue import violation_code, violation_code_catalogue
from cqregistry.domain.model import (
    SHANGHAI,
    LicenceStatus,
    Procedure,
    VehicleKind,
    Violation,
    ViolationSource,
    ViolationStatus,
)
from cqregistry.domain.roster import (
    DECISION_DUE_DAYS,
    SandboxRoster,
    roster_vin_table,
    sandbox_roster,
)

TODAY = dt.date(2026, 5, 10)
POINTS_LIMIT = 12  # R-ADJ-1 (config default)
FINE_LIMIT_FEN = 20000  # 200 yuan, inclusive


@pytest.fixture(scope="module")
def roster() -> SandboxRoster:
    return sandbox_roster(TODAY)


# -- catalogue --------------------------------------------------------------------------
def test_catalogue_points_are_the_second_digit_r_adj_3() -> None:
    """R-ADJ-3: every catalogued code's points equal its second digit."""
    codes = violation_code_catalogue()
    assert len(codes) >= 30
    assert len({c.code for c in codes}) == len(codes)
    assert {len(c.code) for c in codes} == {4, 5}
    for c in codes:
        assert ids.is_valid_violation_code(c.code)
        assert c.points == ids.points_of_code(c.code) == int(c.code[1])
        assert 0 < c.fine_min_fen <= c.fine_max_fen
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.description_zh)
    assert {c.points for c in codes} >= {0, 1, 2, 3, 6, 9}
    assert violation_code("1625").points == 6
    assert violation_code("1039").points == 0


# -- sandbox roster ---------------------------------------------------------------------
PERSONAS = [
    ("2088000000000001", "张伟", "C1", 3, ["渝A12345"]),
    ("2088000000000002", "李娜", "C1", 9, ["渝AD12345"]),
    ("2088000000000003", "王强", "A2", 0, ["渝B23456"]),
    ("2088000000000004", "刘洋", "C1", 0, []),
    ("2088000000000005", "赵敏", "C1", 2, ["渝A67890"]),
]


@pytest.mark.parametrize(("alipay", "name", "cls", "points", "plates"), PERSONAS)
def test_sandbox_personas_r_sbx_1(
    roster: SandboxRoster, alipay: str, name: str, cls: str, points: int, plates: list[str]
) -> None:
    """R-SBX-1: the personas of SANDBOX.md with their licences and vehicles."""
    person = roster.person(alipay)
    assert person.name == name
    assert ids.is_chongqing_id_number(person.id_number)
    licence = roster.licence_of(person)
    assert licence is not None
    assert licence.licence_class == cls
    assert licence.points == points
    assert licence.licence_no == person.id_number
    assert ids.is_valid_file_no(licence.file_no)
    assert licence.status is LicenceStatus.NORMAL
    owned = sorted(v.plate_number for v in roster.vehicles if v.owner_person_id == person.person_id)
    assert owned == plates


def test_sandbox_vehicles_r_sbx_1(roster: SandboxRoster) -> None:
    expected = {
        "渝A12345": "02",
        "渝AD12345": "52",
        "渝B23456": "02",
        "渝A67890": "02",
        "渝C34567": "02",
        "渝A99999": "02",
    }
    assert {v.plate_number: v.plate_type.value for v in roster.vehicles} == expected
    for v in roster.vehicles:
        assert ids.is_valid_plate_number(v.plate_number, v.plate_type)
        assert ids.is_chongqing_plate(v.plate_number) and v.registered_in_chongqing
        assert ids.is_valid_vin(v.vin)
        assert v.vehicle_kind is VehicleKind.PERSONAL_SMALL_CAR


def test_sms_consent_owner_is_not_on_the_platform_r_fol_2(roster: SandboxRoster) -> None:
    """R-FOL-2: 陈静 owns 渝C34567, is not a platform user, phone 13900000005."""
    car = roster.vehicle("渝C34567")
    owner = next(p for p in roster.people if p.person_id == car.owner_person_id)
    assert (owner.name, owner.phone, owner.alipay_user_id) == ("陈静", "13900000005", None)


def test_a99999_is_followed_by_three_other_users_r_fol_4(roster: SandboxRoster) -> None:
    """R-FOL-4: 渝A99999 starts with 3 followers, so a 4th follow is refused."""
    car = roster.vehicle("渝A99999")
    followers = [f.follower_person_id for f in roster.follows if f.vehicle_id == car.vehicle_id]
    assert len(set(followers)) == 3
    people = {p.person_id: p for p in roster.people}
    assert all(people[f].alipay_user_id is not None for f in followers)
    assert car.owner_person_id not in followers


def test_roster_identifiers_are_unique_and_valid(roster: SandboxRoster) -> None:
    assert len({p.person_id for p in roster.people}) == len(roster.people)
    assert len({p.id_number for p in roster.people}) == len(roster.people)
    assert len({p.alipay_user_id for p in roster.people if p.alipay_user_id}) == 8
    assert len({v.vin for v in roster.vehicles}) == len(roster.vehicles)
    assert len({lic.file_no for lic in roster.licences}) == len(roster.licences)
    assert len({v.violation_id for v in roster.violations}) == len(roster.violations)
    for p in roster.people:
        assert ids.is_chongqing_id_number(p.id_number)
        assert p.phone.isdigit() and len(p.phone) == 11


def test_roster_ids_are_stable_and_independent_of_today(roster: SandboxRoster) -> None:
    later = sandbox_roster(TODAY + dt.timedelta(days=100))
    assert sandbox_roster(TODAY) == roster
    assert [p.person_id for p in later.people] == [p.person_id for p in roster.people]
    assert [v.vehicle_id for v in later.vehicles] == [v.vehicle_id for v in roster.vehicles]
    assert [v.violation_id for v in later.violations] == [v.violation_id for v in roster.violations]


def test_roster_ids_are_random_literals_not_derived_from_personal_data(
    roster: SandboxRoster,
) -> None:
    """Every roster id is a uuid4; none is a uuid3/uuid5 of a natural key (any namespace
    among the standard ones and the old registry namespace, with or without a kind)."""
    old = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cqtraffic:registry")
    namespaces = (uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID, uuid.NAMESPACE_X500)
    keys: set[str] = set()
    for p in roster.people:
        keys |= {p.id_number, p.phone, p.name, f"person:{p.id_number}", f"licence:{p.id_number}"}
    for v in roster.vehicles:
        plate = f"{v.plate_type.value}:{v.plate_number}"
        keys |= {v.vin, v.plate_number, plate, f"vehicle:{plate}", f"vehicle:{v.vin}"}
    keys |= {v.source_record_id for v in roster.violations}
    keys |= {f"violation:{v.source_record_id}" for v in roster.violations}
    derived = {
        f(ns, k) for ns in (*namespaces, old) for k in keys for f in (uuid.uuid3, uuid.uuid5)
    }
    every = [
        *(p.person_id for p in roster.people),
        *(v.vehicle_id for v in roster.vehicles),
        *(lic.licence_id for lic in roster.licences),
        *(v.violation_id for v in roster.violations),
    ]
    assert all(i.version == 4 for i in every)
    assert not derived & set(every)
    assert roster.person("2088000000000001").person_id == uuid.UUID(
        "7ea63454-509e-491c-b387-8e815317f169"
    )  # pinned: other teams' demo scripts use it


def test_roster_violations_are_consistent(roster: SandboxRoster) -> None:
    licence_ids = {lic.licence_id for lic in roster.licences}
    for v in roster.violations:
        assert v.points == ids.points_of_code(v.code)
        violation_code(v.code)
        assert v.occurred_at.tzinfo is SHANGHAI and v.occurred_at.date() < TODAY
        assert v.procedure is (
            Procedure.SIMPLE if v.fine_fen <= FINE_LIMIT_FEN else Procedure.GENERAL
        )
        assert v.paid is (v.status is ViolationStatus.PAID)
        if v.status is ViolationStatus.UNHANDLED:
            assert v.decision_no is None and v.decision_date is None and v.licence_id is None
        else:
            assert v.decision_no is not None and ids.is_chongqing_decision(v.decision_no)
            assert v.decision_date is not None and v.licence_id in licence_ids


def _online_eligible(v: Violation) -> bool:
    """Non-site, unhandled, simple procedure, fine ≤ 200 yuan."""
    return (
        v.source is ViolationSource.NON_SITE
        and v.status is ViolationStatus.UNHANDLED
        and v.procedure is Procedure.SIMPLE
        and v.fine_fen <= FINE_LIMIT_FEN
    )


def test_zhang_wei_happy_path_fixtures(roster: SandboxRoster) -> None:
    vs = roster.violations_of(roster.vehicle("渝A12345"))
    eligible = [v for v in vs if _online_eligible(v)]
    assert sorted(v.points for v in eligible) == [0, 3]
    over = [v for v in vs if v.source is ViolationSource.NON_SITE and v.fine_fen > FINE_LIMIT_FEN]
    assert len(over) == 1 and over[0].status is ViolationStatus.UNHANDLED
    on_site_unpaid = [
        v
        for v in vs
        if v.source is ViolationSource.ON_SITE and v.status is ViolationStatus.HANDLED_UNPAID
    ]
    assert len(on_site_unpaid) == 1
    assert len([v for v in vs if v.status is ViolationStatus.PAID]) == 1


def test_li_na_points_boundary_r_adj_1(roster: SandboxRoster) -> None:
    """R-ADJ-1: 李娜 has 9 points; a 3-point violation reaches 12 (allowed), a 6-point 15."""
    li_na = roster.person("2088000000000002")
    licence = roster.licence_of(li_na)
    assert licence is not None and licence.points == 9
    vs = [v for v in roster.violations_of(roster.vehicle("渝AD12345")) if _online_eligible(v)]
    after = sorted(licence.points + v.points for v in vs)
    assert after == [12, 15]
    assert [a <= POINTS_LIMIT for a in after] == [True, False]


def test_wang_qiang_a_class_fixtures_r_adj_2(roster: SandboxRoster) -> None:
    """R-ADJ-2: 王强 (A2) has a point-bearing and a 0-point eligible violation."""
    licence = roster.licence_of(roster.person("2088000000000003"))
    assert licence is not None and ids.is_ab_class(licence.licence_class)
    vs = [v for v in roster.violations_of(roster.vehicle("渝B23456")) if _online_eligible(v)]
    assert sorted(v.points > 0 for v in vs) == [False, True]


def test_zhao_min_decision_overdue_by_20_days_r_pay_2(roster: SandboxRoster) -> None:
    """R-PAY-2: due 15 days after the decision; 赵敏's is 35 days old, overdue by 20 days."""
    for today in (TODAY, dt.date(2027, 1, 1), dt.date(2028, 2, 29)):
        r = sandbox_roster(today)
        (v,) = [
            v
            for v in r.violations_of(r.vehicle("渝A67890"))
            if v.status is ViolationStatus.HANDLED_UNPAID
        ]
        assert v.decision_date == today - dt.timedelta(days=35)
        due = v.decision_date + dt.timedelta(days=DECISION_DUE_DAYS)
        assert (today - due).days == 20
        late_fee = min(v.fine_fen, v.fine_fen * 3 * (today - due).days // 100)
        assert late_fee == 12000  # 20 days x 3 % of 200 yuan


def test_liu_yang_has_no_vehicle_and_no_violations(roster: SandboxRoster) -> None:
    liu = roster.person("2088000000000004")
    assert not [v for v in roster.vehicles if v.owner_person_id == liu.person_id]


def test_roster_vin_table_lists_every_vehicle(roster: SandboxRoster) -> None:
    table = roster_vin_table()
    assert table == tuple((v.plate_number, v.plate_type.value, v.vin[-6:]) for v in roster.vehicles)
    assert table[0] == ("渝A12345", "02", "120345")
    for v in roster.vehicles:
        assert ids.vin_matches(v.vin, v.vin[-6:].lower())


def test_zw_03_is_non_site_general_procedure_without_a_decision() -> None:
    """DOMAIN.md (R-ADJ): a non-site record over 200 yuan needs the general procedure and
    arrives without a decision; it stays unhandled until a counter handles it."""
    (v,) = [v for v in sandbox_roster(TODAY).violations if v.source_record_id == "SBX-ZW-03"]
    assert v.source is ViolationSource.NON_SITE and v.procedure is Procedure.GENERAL
    assert v.fine_fen > FINE_LIMIT_FEN
    assert v.status is ViolationStatus.UNHANDLED and not v.paid
    assert (v.decision_no, v.decision_date, v.licence_id) == (None, None, None)
