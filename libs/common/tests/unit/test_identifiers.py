"""Unit tests of cqcommon.identifiers: formats, check digits, masking (R-Q-4),
points from codes (R-ADJ-3), A/B classes (R-ADJ-2) and error codes (R-ERR-1)."""

from __future__ import annotations

import datetime as dt

import pytest
from cqcommon import identifiers as ids
from cqcommon.errors import CATALOGUE, DomainError, ErrorKind
from hypothesis import given
from hypothesis import strategies as st

# -- plate types and numbers ------------------------------------------------------------


def test_plate_types_have_national_codes_and_chinese_names() -> None:
    assert {t.value for t in ids.PlateType} == {"01", "02", "07", "51", "52"}
    assert ids.PlateType.SMALL_CAR.name_zh == "小型汽车"
    assert ids.PlateType.SMALL_NEV.name_zh == "小型新能源汽车"
    assert ids.PlateType.MOTORCYCLE.name_zh == "普通摩托车"
    assert ids.PlateType.LARGE_NEV.is_new_energy and not ids.PlateType.LARGE_CAR.is_new_energy


@pytest.mark.parametrize("raw", ["02", " 02 ", "０２", ids.PlateType.SMALL_CAR])
def test_parse_plate_type_accepts_codes(raw: str) -> None:
    assert ids.parse_plate_type(raw) is ids.PlateType.SMALL_CAR


@pytest.mark.parametrize("raw", ["", "2", "03", "52a", "small"])
def test_parse_plate_type_rejects_unknown_codes(raw: str) -> None:
    assert not ids.is_valid_plate_type(raw)
    with pytest.raises(DomainError) as exc:
        ids.parse_plate_type(raw)
    assert exc.value.code == "INVALID_PLATE_TYPE"


@pytest.mark.parametrize(
    ("raw", "plate_type", "expected"),
    [
        ("渝A12345", "02", "渝A12345"),
        (" 渝a·12345 ", "02", "渝A12345"),
        ("渝ａ１２３４５", "01", "渝A12345"),
        ("渝BZ50L5", "07", "渝BZ50L5"),
        ("渝AD12345", "52", "渝AD12345"),
        ("渝afa1234", "52", "渝AFA1234"),
        ("渝A12345D", "51", "渝A12345D"),
        ("川A12345", "02", "川A12345"),
        ("京N8P888", "02", "京N8P888"),
    ],
)
def test_plate_numbers_normalise(raw: str, plate_type: str, expected: str) -> None:
    assert ids.normalise_plate_number(raw, plate_type) == expected
    assert ids.parse_plate(plate_type, raw) == (ids.PlateType(plate_type), expected)
    assert ids.is_valid_plate_number(raw, plate_type)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "渝A1234",  # too short
        "渝A123456",  # ordinary + 1
        "渝I12345",  # I is no issuing letter
        "渝A1234O",  # O not allowed in the serial
        "渝A12I45",
        "XA12345",  # no province
        "A12345",
        "渝112345",
        "渝AX12345",  # 8 chars but not D/F
        "渝AD1234A",  # NEV tail must be digits
        "渝A1234XD",  # large NEV: 5 digits first
    ],
)
def test_malformed_plates_are_rejected(raw: str) -> None:
    assert not ids.is_valid_plate_number(raw)
    with pytest.raises(DomainError) as exc:
        ids.normalise_plate_number(raw)
    assert exc.value.code == "INVALID_PLATE_NUMBER"
    assert exc.value.details == {"reason": "format"}


@pytest.mark.parametrize(
    ("raw", "plate_type"),
    [
        ("渝AD12345", "02"),  # NEV number with an ordinary type
        ("渝A12345", "52"),  # ordinary number with an NEV type
        ("渝A12345", "51"),
        ("渝A12345D", "52"),  # large-NEV shape with the small-NEV type
        ("渝AD12345", "51"),
        ("渝A12345D", "07"),
    ],
)
def test_plate_format_must_match_plate_type(raw: str, plate_type: str) -> None:
    assert ids.is_valid_plate_number(raw)
    assert not ids.is_valid_plate_number(raw, plate_type)
    with pytest.raises(DomainError) as exc:
        ids.parse_plate(plate_type, raw)
    assert exc.value.code == "INVALID_PLATE_NUMBER"
    assert exc.value.details == {"reason": "type_mismatch"}


def test_parse_plate_with_unknown_type_is_a_plate_type_error() -> None:
    with pytest.raises(DomainError) as exc:
        ids.parse_plate("99", "渝A12345")
    assert exc.value.code == "INVALID_PLATE_TYPE"


def test_plate_format_detection() -> None:
    assert ids.plate_format("渝A12345") is ids.PlateFormat.ORDINARY
    assert ids.plate_format("渝AD12345") is ids.PlateFormat.SMALL_NEV
    assert ids.plate_format("渝A12345F") is ids.PlateFormat.LARGE_NEV
    assert ids.plate_format("渝a12345") is None  # expects normalised input


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("渝A12345", True), (" 渝ad12345", True), ("川A12345", False), ("渝A1234", False)],
)
def test_is_chongqing_plate(raw: str, expected: bool) -> None:
    assert ids.is_chongqing_plate(raw) is expected


# -- VIN --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9AXKP042788",  # the classic check-digit example, check digit X
        "11111111111111111",  # all ones: 89 mod 11 = 1
        "1HGCM82633A004352",  # the usual NHTSA decoder example
    ],
)
def test_known_real_vins_are_valid(vin: str) -> None:
    assert ids.is_valid_vin(vin)
    assert ids.vin_check_digit(vin) == vin[8]
    assert ids.normalise_vin(vin.lower()) == vin


def test_vin_check_digit_ignores_position_9_and_can_be_x() -> None:
    assert ids.vin_check_digit("1M8GDM9A0KP042788") == "X"
    assert ids.with_vin_check_digit("1M8GDM9A0KP042788") == "1M8GDM9AXKP042788"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1M8GDM9A1KP042788", "check_digit"),
        ("1M8GDM9AXKP04278", "length"),
        ("1M8GDM9AXKP0427888", "length"),
        ("1M8GDM9AXKP04278O", "characters"),  # O
        ("IM8GDM9AXKP042788", "characters"),  # I
        ("1M8GDM9AXKQ042788", "characters"),  # Q
    ],
)
def test_invalid_vins_are_rejected(raw: str, reason: str) -> None:
    assert not ids.is_valid_vin(raw)
    with pytest.raises(DomainError) as exc:
        ids.normalise_vin(raw)
    assert exc.value.code == "INVALID_VIN"
    assert exc.value.details == {"reason": reason}


vin_bodies = st.text(alphabet=ids.VIN_ALPHABET, min_size=17, max_size=17)


@given(vin_bodies)
def test_generated_vins_with_check_digit_are_always_valid(body: str) -> None:
    vin = ids.with_vin_check_digit(body)
    assert ids.is_valid_vin(vin)
    assert ids.is_valid_vin(vin.lower())


@pytest.mark.parametrize(
    ("given_vin", "expected"),
    [
        ("042788", True),
        ("kp042788"[-6:], True),
        (" 042788 ", True),
        ("1m8gdm9axkp042788", True),
        ("042789", False),
        ("42788", False),
        ("1M8GDM9AXKP042789", False),
        ("", False),
        ("渝渝渝渝渝渝", False),
    ],
)
def test_vin_matches_last6_or_full_vin_case_insensitive(given_vin: str, expected: bool) -> None:
    assert ids.vin_matches("1M8GDM9AXKP042788", given_vin) is expected


def test_vin_last6_and_proof_format() -> None:
    assert ids.vin_last6("1m8gdm9axkp042788") == "042788"
    assert ids.is_valid_vin_proof("042788")
    assert ids.is_valid_vin_proof("1M8GDM9AXKP042788")
    assert not ids.is_valid_vin_proof("04278O")
    assert not ids.is_valid_vin_proof("1M8GDM9A1KP042788")


# -- ID numbers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "id_number",
    ["11010519491231002X", "11010519491231002x", "500103198803159111", "50011219791123933X"],
)
def test_known_good_id_numbers(id_number: str) -> None:
    assert ids.is_valid_id_number(id_number)
    assert ids.parse_id_number(id_number) == id_number.upper()


def test_id_number_parts() -> None:
    assert ids.id_check_char("11010519491231002") == "X"
    assert ids.id_birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert ids.id_region_code("500103198803159111") == "500103"
    assert not ids.id_is_male("11010519491231002X")  # 17th digit 2: female
    assert ids.id_is_male("500103198803159111")
    assert ids.is_chongqing_id_number("500103198803159111")
    assert not ids.is_chongqing_id_number("11010519491231002X")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("110105194912310021", "check_char"),
        ("11010519491231002", "format"),
        ("1101051949123100211", "format"),
        ("11010519490230002X", "birth_date"),  # 30 February
        ("110105184912310027", "birth_date"),  # before 1900 (check char recomputed below)
        ("990105194912310025", "region"),
        ("1101051949123100X2", "format"),
    ],
)
def test_invalid_id_numbers_are_rejected(raw: str, reason: str) -> None:
    if reason == "birth_date" and raw.startswith("1101051849"):
        raw = raw[:17] + ids.id_check_char(raw)
    assert not ids.is_valid_id_number(raw)
    with pytest.raises(DomainError) as exc:
        ids.parse_id_number(raw)
    assert exc.value.code == "INVALID_ID_NUMBER"
    assert exc.value.details == {"reason": reason}


def test_id_birth_date_after_today_is_rejected() -> None:
    future = "500103203001010011"
    future = future[:17] + ids.id_check_char(future)
    assert ids.is_valid_id_number(future)
    assert not ids.is_valid_id_number(future, today=dt.date(2026, 1, 1))


id_parts = st.tuples(
    st.sampled_from(["500103", "500112", "500243", "110105", "440305"]),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)),
    st.integers(min_value=0, max_value=999),
)


def _make_id(region: str, born: dt.date, seq: int) -> str:
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    return body + ids.id_check_char(body)


@given(id_parts)
def test_generated_id_numbers_are_always_valid(parts: tuple[str, dt.date, int]) -> None:
    id_number = _make_id(*parts)
    assert ids.is_valid_id_number(id_number)
    assert ids.id_birth_date(id_number) == parts[1]
    assert ids.is_chongqing_id_number(id_number) is parts[0].startswith("50")


@given(id_parts, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_breaks_the_id_check_char(
    parts: tuple[str, dt.date, int], pos: int, delta: int
) -> None:
    """MOD 11-2 detects every single substitution error."""
    id_number = _make_id(*parts)
    digit = (int(id_number[pos]) + delta) % 10
    mutated = id_number[:pos] + str(digit) + id_number[pos + 1 :]
    assert ids.id_check_char(mutated) != id_number[17]


# -- licences ---------------------------------------------------------------------------
def test_licence_classes() -> None:
    expected = "A1 A2 A3 B1 B2 C1 C2 C3 C4 C5 C6 D E F M N P"
    assert " ".join(c.value for c in ids.LicenceClass) == expected
    assert ids.parse_licence_class(" c1 ") is ids.LicenceClass.C1
    assert ids.LicenceClass.A2.name_zh == "重型牵引挂车"
    assert ids.split_licence_classes("C1E") == (ids.LicenceClass.C1, ids.LicenceClass.E)
    assert ids.split_licence_classes("A1/A2") == (ids.LicenceClass.A1, ids.LicenceClass.A2)
    assert ids.is_valid_licence_class("B2")


@pytest.mark.parametrize("raw", ["", "C7", "A4", "G", "C1X", "1C"])
def test_invalid_licence_classes(raw: str) -> None:
    assert not ids.is_valid_licence_class(raw)
    with pytest.raises(DomainError) as exc:
        ids.split_licence_classes(raw)
    assert exc.value.code == "INVALID_LICENCE_CLASS"


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("A1", True),
        ("A2", True),
        ("A3", True),
        ("B1", True),
        ("B2", True),
        ("C1", False),
        ("C2", False),
        ("E", False),
        ("C1E", False),
        ("B2E", True),
        (ids.LicenceClass.A2, True),
    ],
)
def test_is_ab_class_r_adj_2(cls: str, expected: bool) -> None:
    """R-ADJ-2: "A/B class" is any class starting with A or B."""
    assert ids.is_ab_class(cls) is expected


def test_file_numbers_are_12_digits() -> None:
    assert ids.parse_file_no(" 500100000001 ") == "500100000001"
    for bad in ["50010000000", "5001000000012", "50010000000A", ""]:
        assert not ids.is_valid_file_no(bad)
        with pytest.raises(DomainError) as exc:
            ids.parse_file_no(bad)
        assert exc.value.code == "INVALID_FILE_NO"


# -- violation codes and decisions ------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "points"), [("1039", 0), ("1625", 6), ("1345", 3), ("13440", 3), ("19010", 9)]
)
def test_points_of_code_is_the_second_digit_r_adj_3(code: str, points: int) -> None:
    """R-ADJ-3: the second digit of a violation code is its points."""
    assert ids.points_of_code(code) == points


@pytest.mark.parametrize("raw", ["", "103", "103912", "10a9", "-103"])
def test_invalid_violation_codes(raw: str) -> None:
    assert not ids.is_valid_violation_code(raw)
    with pytest.raises(DomainError) as exc:
        ids.points_of_code(raw)
    assert exc.value.code == "INVALID_VIOLATION_CODE"


def test_decision_numbers() -> None:
    assert ids.parse_decision_no(" 5001039000000001") == "5001039000000001"
    assert ids.decision_division_code("5001039000000001") == "500103"
    assert ids.is_chongqing_decision("5001039000000001")
    assert ids.is_valid_decision_no("5101079000000001")
    assert not ids.is_chongqing_decision("5101079000000001")
    assert not ids.is_chongqing_decision("50010390000001")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("500103900000000", "format"),
        ("50010390000000011", "format"),
        ("500103900000000A", "format"),
        ("9901039000000001", "division"),
    ],
)
def test_malformed_decision_numbers_r_pay_1(raw: str, reason: str) -> None:
    """R-PAY-1: a malformed decision number is a clear 4xx error."""
    assert not ids.is_valid_decision_no(raw)
    with pytest.raises(DomainError) as exc:
        ids.parse_decision_no(raw)
    assert exc.value.code == "INVALID_DECISION_NO"
    assert exc.value.kind is ErrorKind.INVALID
    assert exc.value.details == {"reason": reason}


# -- masking ----------------------------------------------------------------------------
def test_masking_examples_r_q_4() -> None:
    """R-Q-4: ID numbers, phones and names are masked as in the spec."""
    assert ids.mask_id_number("500101199001011234") == "5001**********1234"
    assert ids.mask_phone("13900005678") == "139****5678"
    assert ids.mask_name("张伟") == "张*"
    assert ids.mask_name("欧阳娜娜") == "欧***"


@pytest.mark.parametrize(
    ("fn", "raw", "expected"),
    [
        (ids.mask_id_number, "", ""),
        (ids.mask_id_number, "12", "**"),
        (ids.mask_id_number, "12345", "****5"),
        (ids.mask_phone, "", ""),
        (ids.mask_phone, "123", "***"),
        (ids.mask_phone, "12345", "***45"),
        (ids.mask_name, "", ""),
        (ids.mask_name, "张", "*"),
    ],
)
def test_masking_short_inputs_r_q_4(fn: object, raw: str, expected: str) -> None:
    assert callable(fn)
    assert fn(raw) == expected


@given(st.text(max_size=30))
def test_masking_is_idempotent_and_keeps_length_r_q_4(value: str) -> None:
    for fn in (ids.mask_id_number, ids.mask_phone, ids.mask_name):
        once = fn(value)
        assert fn(once) == once
        assert len(once) == len(value)
    if len(value) >= 2:
        assert ids.mask_name(value)[0] == value[0]
        assert set(ids.mask_name(value)[1:]) == {"*"}


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    [
        "INVALID_PLATE_NUMBER",
        "INVALID_PLATE_TYPE",
        "INVALID_VIN",
        "INVALID_ID_NUMBER",
        "INVALID_FILE_NO",
        "INVALID_DECISION_NO",
        "INVALID_VIOLATION_CODE",
        "INVALID_LICENCE_CLASS",
    ],
)
def test_error_codes_are_catalogued_invalid_and_bilingual_r_err_1(code: str) -> None:
    """R-ERR-1: stable code, 4xx kind, message in Chinese and English."""
    spec = CATALOGUE[code]
    assert spec.kind is ErrorKind.INVALID
    assert any("\u4e00" <= ch <= "\u9fff" for ch in spec.message_zh)
    assert spec.message_en.isascii() and spec.message_en


def test_errors_never_echo_personal_input() -> None:
    with pytest.raises(DomainError) as exc:
        ids.parse_id_number("500103198803159112")
    assert "500103198803159112" not in exc.value.to_bytes().decode()
