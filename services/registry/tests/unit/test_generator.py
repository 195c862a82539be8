"""Unit tests of the registry's deterministic data: the violation-code catalogue, the
SANDBOX.md roster (R-SBX-1) and the synthetic stream."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import Counter

import pytest
from cqcommon import identifiers as ids
from cqregistry.generator import (
    COPY_COLUMNS,
    MAX_SYNTHETIC_VEHICLES,
    SHANGHAI,
    LicenceStatus,
    Procedure,
    Row,
    VehicleKind,
    Violation,
    ViolationSource,
    ViolationStatus,
    iter_rows_for_copy,
    make_id_number,
    make_vin,
    stable_id,
    synthetic,
    to_row,
    violation_code,
    violation_code_catalogue,
)
from cqregistry.roster import (
    DECISION_DUE_DAYS,
    SandboxRoster,
    iter_roster_rows,
    roster_vin_table,
    sandbox_roster,
)
from hypothesis import given, settings
from hypothesis import strategies as st

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
    zhang = roster.person("2088000000000001")
    assert zhang.person_id == stable_id("person", "500103198803159111")


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


def test_roster_rows_follow_copy_columns(roster: SandboxRoster) -> None:
    for table in ("people", "vehicles", "licences", "violations"):
        rows = list(iter_roster_rows(table, TODAY))
        assert rows and all(len(r) == len(COPY_COLUMNS[table]) for r in rows)
        assert all(type(x) is not ViolationStatus for r in rows for x in r)
    with pytest.raises(ValueError, match="unknown"):
        list(iter_roster_rows("nope", TODAY))


# -- synthetic --------------------------------------------------------------------------
def test_synthetic_is_deterministic() -> None:
    a = list(synthetic(42, 3000, 1.5, TODAY))
    b = list(synthetic(42, 3000, 1.5, TODAY))
    assert a == b
    assert a != list(synthetic(43, 3000, 1.5, TODAY))


def test_synthetic_slices_equal_the_full_run() -> None:
    full = list(synthetic(5, 5000, 2.0, TODAY))
    assert list(synthetic(5, 5000, 2.0, TODAY, start=1000, stop=3100)) == full[1000:3100]
    assert list(synthetic(5, 5000, 2.0, TODAY, start=4999)) == full[4999:]
    # a larger data set starts with the same records
    assert list(synthetic(5, 9000, 2.0, TODAY, stop=5000)) == full


def _rows(table: str, seed: int = 9, vehicles: int = 2000) -> list[Row]:
    return list(iter_rows_for_copy(table, seed=seed, vehicles=vehicles, today=TODAY))


def test_synthetic_matches_copy_rows() -> None:
    recs = list(synthetic(9, 2000, 1.5, TODAY))
    assert [to_row(r.person) for r in recs] == _rows("people")
    assert [to_row(r.vehicle) for r in recs] == _rows("vehicles")
    assert [to_row(r.licence) for r in recs if r.licence] == _rows("licences")
    assert [to_row(v) for r in recs for v in r.violations] == _rows("violations")


def test_synthetic_records_are_valid_and_consistent() -> None:
    n = 20_000
    catalogue = {c.code: c for c in violation_code_catalogue()}
    types: Counter[str] = Counter()
    violations = 0
    for rec in synthetic(11, n, 1.5, TODAY):
        p, v, lic = rec.person, rec.vehicle, rec.licence
        assert ids.is_chongqing_id_number(p.id_number)
        assert p.alipay_user_id is None or p.alipay_user_id.startswith("20881")
        assert v.owner_person_id == p.person_id
        assert ids.is_valid_plate_number(v.plate_number, v.plate_type)
        assert ids.is_chongqing_plate(v.plate_number)
        assert ids.is_valid_vin(v.vin)
        types[v.plate_type.value] += 1
        if lic is not None:
            assert lic.person_id == p.person_id and lic.licence_no == p.id_number
            assert ids.is_valid_file_no(lic.file_no) and lic.first_issued_on <= TODAY
            assert 0 <= lic.points <= 12
            assert (lic.status is LicenceStatus.OVER_POINTS) is (lic.points >= 12)
        for vio in rec.violations:
            violations += 1
            code = catalogue[vio.code]
            assert vio.points == code.points == ids.points_of_code(vio.code)
            assert code.fine_min_fen <= vio.fine_fen <= code.fine_max_fen
            assert vio.vehicle_id == v.vehicle_id
            assert vio.occurred_at.tzinfo is SHANGHAI and vio.occurred_at.date() < TODAY
            assert vio.paid is (vio.status is ViolationStatus.PAID)
            expected = Procedure.SIMPLE if vio.fine_fen <= FINE_LIMIT_FEN else Procedure.GENERAL
            assert vio.procedure is expected
            if vio.status is ViolationStatus.UNHANDLED:
                assert vio.source is ViolationSource.NON_SITE
                assert vio.decision_no is None and vio.licence_id is None
            else:
                assert vio.decision_no is not None and ids.is_valid_decision_no(vio.decision_no)
                assert vio.decision_date is not None
                assert vio.occurred_at.date() <= vio.decision_date <= TODAY
                assert vio.licence_id == (lic.licence_id if lic else None)
    share = {t: c / n for t, c in types.items()}
    assert 0.78 < share["02"] < 0.85 and 0.06 < share["52"] < 0.11
    assert {"01", "07", "51"} <= set(share)
    assert 1.3 * n < violations < 1.7 * n


def test_synthetic_plates_vins_ids_are_unique_over_200k_vehicles() -> None:
    n = 200_000
    plates: set[str] = set()
    vins: set[str] = set()
    for row in iter_rows_for_copy("vehicles", seed=3, vehicles=n, today=TODAY):
        plates.add(str(row[2]))
        vins.add(str(row[3]))
    assert len(plates) == len(vins) == n
    roster = sandbox_roster(TODAY)
    assert not plates & {v.plate_number for v in roster.vehicles}
    assert not vins & {v.vin for v in roster.vehicles}
    id_numbers = {str(r[2]) for r in iter_rows_for_copy("people", seed=3, vehicles=n, today=TODAY)}
    assert len(id_numbers) == n
    assert not id_numbers & {p.id_number for p in roster.people}


def test_synthetic_ids_do_not_collide_across_tables() -> None:
    recs = list(synthetic(1, 3000, 3.0, TODAY))
    all_ids = [r.person.person_id for r in recs] + [r.vehicle.vehicle_id for r in recs]
    all_ids += [r.licence.licence_id for r in recs if r.licence]
    all_ids += [v.violation_id for r in recs for v in r.violations]
    assert len(set(all_ids)) == len(all_ids)
    decisions = [v.decision_no for r in recs for v in r.violations if v.decision_no]
    assert len(set(decisions)) == len(decisions)
    sources = [v.source_record_id for r in recs for v in r.violations]
    assert len(set(sources)) == len(sources)


def test_synthetic_is_lazy() -> None:
    stream = synthetic(1, MAX_SYNTHETIC_VEHICLES, 1.0, TODAY)
    assert len(list(itertools.islice(stream, 3))) == 3


@pytest.mark.parametrize(
    ("vehicles", "rate", "start", "stop"),
    [
        (-1, 1.0, 0, None),
        (MAX_SYNTHETIC_VEHICLES + 1, 1.0, 0, None),
        (10, 1.0, 5, 2),
        (10, -0.5, 0, None),
        (10, 21.0, 0, None),
    ],
)
def test_synthetic_rejects_bad_arguments(
    vehicles: int, rate: float, start: int, stop: int | None
) -> None:
    with pytest.raises(ValueError):
        list(synthetic(1, vehicles, rate, TODAY, start=start, stop=stop))


def test_copy_rows_have_the_declared_column_count() -> None:
    for table, columns in COPY_COLUMNS.items():
        rows = _rows(table, seed=2, vehicles=300)
        assert rows and all(len(r) == len(columns) for r in rows)
        plain = (str, int, bool, uuid.UUID, dt.date, dt.datetime, type(None))
        assert all(type(x) in plain for r in rows for x in r)  # no enums in COPY rows
    with pytest.raises(ValueError, match="unknown table"):
        list(iter_rows_for_copy("nope", seed=2, vehicles=3, today=TODAY))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**63),
    st.integers(min_value=0, max_value=MAX_SYNTHETIC_VEHICLES - 200),
)
def test_generated_vins_and_ids_are_always_valid(seed: int, start: int) -> None:
    """Any seed, anywhere in the index range: VINs, ID numbers, plates are valid."""
    for rec in synthetic(seed, MAX_SYNTHETIC_VEHICLES, 1.0, TODAY, start=start, stop=start + 50):
        assert ids.is_valid_vin(rec.vehicle.vin)
        assert ids.is_chongqing_id_number(rec.person.id_number)
        assert ids.is_valid_plate_number(rec.vehicle.plate_number, rec.vehicle.plate_type)


@given(st.text(alphabet=ids.VIN_ALPHABET, min_size=16, max_size=16))
def test_make_vin_always_has_a_valid_check_digit(chars: str) -> None:
    vin = make_vin(chars[:3], chars[3:8], chars[8], chars[9], chars[10:])
    assert ids.is_valid_vin(vin)


@given(
    st.sampled_from(["500103", "500243"]),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
)
def test_make_id_number_is_always_valid(region: str, born: dt.date, seq: int) -> None:
    id_number = make_id_number(region, born, seq)
    assert ids.is_chongqing_id_number(id_number)
    assert ids.id_is_male(id_number) is (seq % 2 == 1)


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7])
def test_every_bijection_has_room_for_max_synthetic_vehicles(seed: int) -> None:
    """Plates, VINs, ID numbers, file and decision numbers stay unique up to the cap."""
    from cqregistry import generator as g

    plan = g._plan(seed)
    last = MAX_SYNTHETIC_VEHICLES - 1
    for slot in plan.slots:
        periods = last // 1000 + 1
        assert periods * slot.fmt_per_period <= slot.plate_perm[2]
        assert periods * slot.type_per_period <= slot.vin_perm[2]
    assert len(g.CHONGQING_DIVISIONS) * g._BIRTH_DAYS * 900 >= MAX_SYNTHETIC_VEHICLES
    assert MAX_SYNTHETIC_VEHICLES <= 10**8  # file numbers 5002 + 8 digits
    assert MAX_SYNTHETIC_VEHICLES * 32 < 9 * 10**9  # decision serials below the roster's 9…
