"""Unit tests of the synthetic data set (dev tooling): deterministic for a seed and id
key, sliceable, valid and unique identifiers, and ids that come from the random per-data-set
key, never from personal fields."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import Counter

import pytest
from cqcommon import identifiers as ids
from cqdev.datagen.identifiers import CHONGQING_DIVISIONS, make_id_number, make_vin
from cqdev.datagen.synthetic import (
    COPY_COLUMNS,
    MAX_SYNTHETIC_VEHICLES,
    Row,
    SyntheticRecord,
    iter_rows_for_copy,
    synthetic,
    to_row,
)
from cqregistry.domain.catalogue import violation_code_catalogue
from cqregistry.domain.model import (
    SHANGHAI,
    LicenceStatus,
    Procedure,
    ViolationSource,
    ViolationStatus,
)
from cqregistry.domain.roster import sandbox_roster
from hypothesis import given, settings
from hypothesis import strategies as st

TODAY = dt.date(2026, 5, 10)
FINE_LIMIT_FEN = 20000  # 200 yuan, inclusive
KEY = bytes(range(32))  # a fixed id key, so runs compare; real data sets draw a random one


# -- data --------------------------------------------------------------------------------
def test_synthetic_is_deterministic() -> None:
    a = list(synthetic(42, 3000, 1.5, TODAY, id_key=KEY))
    b = list(synthetic(42, 3000, 1.5, TODAY, id_key=KEY))
    assert a == b
    assert a != list(synthetic(43, 3000, 1.5, TODAY, id_key=KEY))


def test_synthetic_slices_equal_the_full_run() -> None:
    full = list(synthetic(5, 5000, 2.0, TODAY, id_key=KEY))
    assert (
        list(synthetic(5, 5000, 2.0, TODAY, id_key=KEY, start=1000, stop=3100)) == full[1000:3100]
    )
    assert list(synthetic(5, 5000, 2.0, TODAY, id_key=KEY, start=4999)) == full[4999:]
    # a larger data set starts with the same records
    assert list(synthetic(5, 9000, 2.0, TODAY, id_key=KEY, stop=5000)) == full


def _rows(table: str, seed: int = 9, vehicles: int = 2000) -> list[Row]:
    return list(iter_rows_for_copy(table, seed=seed, id_key=KEY, vehicles=vehicles, today=TODAY))


def test_synthetic_matches_copy_rows() -> None:
    recs = list(synthetic(9, 2000, 1.5, TODAY, id_key=KEY))
    assert [to_row(r.person) for r in recs] == _rows("people")
    assert [to_row(r.vehicle) for r in recs] == _rows("vehicles")
    assert [to_row(r.licence) for r in recs if r.licence] == _rows("licences")
    assert [to_row(v) for r in recs for v in r.violations] == _rows("violations")


def test_synthetic_records_are_valid_and_consistent() -> None:
    n = 20_000
    catalogue = {c.code: c for c in violation_code_catalogue()}
    types: Counter[str] = Counter()
    violations = 0
    for rec in synthetic(11, n, 1.5, TODAY, id_key=KEY):
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
    for row in iter_rows_for_copy("vehicles", seed=3, id_key=KEY, vehicles=n, today=TODAY):
        plates.add(str(row[2]))
        vins.add(str(row[3]))
    assert len(plates) == len(vins) == n
    roster = sandbox_roster(TODAY)
    assert not plates & {v.plate_number for v in roster.vehicles}
    assert not vins & {v.vin for v in roster.vehicles}
    id_numbers = {
        str(r[2]) for r in iter_rows_for_copy("people", seed=3, id_key=KEY, vehicles=n, today=TODAY)
    }
    assert len(id_numbers) == n
    assert not id_numbers & {p.id_number for p in roster.people}


def test_synthetic_ids_do_not_collide_across_tables() -> None:
    recs = list(synthetic(1, 3000, 3.0, TODAY, id_key=KEY))
    all_ids = [r.person.person_id for r in recs] + [r.vehicle.vehicle_id for r in recs]
    all_ids += [r.licence.licence_id for r in recs if r.licence]
    all_ids += [v.violation_id for r in recs for v in r.violations]
    assert len(set(all_ids)) == len(all_ids)
    decisions = [v.decision_no for r in recs for v in r.violations if v.decision_no]
    assert len(set(decisions)) == len(decisions)
    sources = [v.source_record_id for r in recs for v in r.violations]
    assert len(set(sources)) == len(sources)


def test_synthetic_is_lazy() -> None:
    stream = synthetic(1, MAX_SYNTHETIC_VEHICLES, 1.0, TODAY, id_key=KEY)
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
        list(synthetic(1, vehicles, rate, TODAY, id_key=KEY, start=start, stop=stop))


def test_copy_rows_have_the_declared_column_count() -> None:
    for table, columns in COPY_COLUMNS.items():
        rows = _rows(table, seed=2, vehicles=300)
        assert rows and all(len(r) == len(columns) for r in rows)
        plain = (str, int, bool, uuid.UUID, dt.date, dt.datetime, type(None))
        assert all(type(x) in plain for r in rows for x in r)  # no enums in COPY rows
    with pytest.raises(ValueError, match="unknown table"):
        list(iter_rows_for_copy("nope", seed=2, id_key=KEY, vehicles=3, today=TODAY))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**63),
    st.integers(min_value=0, max_value=MAX_SYNTHETIC_VEHICLES - 200),
)
def test_generated_vins_and_ids_are_always_valid(seed: int, start: int) -> None:
    """Any seed, anywhere in the index range: VINs, ID numbers, plates are valid."""
    for rec in synthetic(
        seed, MAX_SYNTHETIC_VEHICLES, 1.0, TODAY, id_key=KEY, start=start, stop=start + 50
    ):
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
    from cqdev.datagen import synthetic as g

    plan = g._plan(seed, KEY)
    last = MAX_SYNTHETIC_VEHICLES - 1
    for slot in plan.slots:
        periods = last // 1000 + 1
        assert periods * slot.fmt_per_period <= slot.plate_perm[2]
        assert periods * slot.type_per_period <= slot.vin_perm[2]
    assert len(CHONGQING_DIVISIONS) * g._BIRTH_DAYS * 900 >= MAX_SYNTHETIC_VEHICLES
    assert MAX_SYNTHETIC_VEHICLES <= 10**8  # file numbers 5002 + 8 digits
    assert MAX_SYNTHETIC_VEHICLES * 32 < 9 * 10**9  # decision serials below the roster's 9…


def test_ids_come_from_the_id_key_not_from_the_seed_or_personal_fields() -> None:
    """Same seed, two keys: the same people, plates and VINs under unrelated ids; no id is
    a uuid3/uuid5 of a personal field (standard namespaces and the old registry one)."""
    a = list(synthetic(4, 300, 2.0, TODAY, id_key=KEY))
    b = list(synthetic(4, 300, 2.0, TODAY, id_key=bytes(reversed(KEY))))
    assert [r.person.id_number for r in a] == [r.person.id_number for r in b]
    assert [r.vehicle.vin for r in a] == [r.vehicle.vin for r in b]

    def every_id(recs: list[SyntheticRecord]) -> set[uuid.UUID]:
        out: set[uuid.UUID] = set()
        for r in recs:
            out |= {r.person.person_id, r.vehicle.vehicle_id}
            out |= {v.violation_id for v in r.violations}
            if r.licence is not None:
                out.add(r.licence.licence_id)
        return out

    ids_a, ids_b = every_id(a), every_id(b)
    assert not ids_a & ids_b
    assert all(i.version == 4 for i in ids_a)
    old = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cqtraffic:registry")
    namespaces = (uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID, uuid.NAMESPACE_X500)
    keys: set[str] = set()
    for r in a:
        plate = f"{r.vehicle.plate_type.value}:{r.vehicle.plate_number}"
        keys |= {r.person.id_number, r.person.phone, r.person.name, r.vehicle.vin, plate}
        keys |= {f"person:{r.person.id_number}", f"licence:{r.person.id_number}"}
        keys |= {f"vehicle:{plate}", f"vehicle:{r.vehicle.vin}"}
    derived = {
        f(ns, k) for ns in (*namespaces, old) for k in keys for f in (uuid.uuid3, uuid.uuid5)
    }
    assert not derived & ids_a


def test_a_short_id_key_is_refused() -> None:
    with pytest.raises(ValueError, match="id_key"):
        list(synthetic(1, 3, 1.0, TODAY, id_key=b"short"))
