"""Pure identifier rules every service shares (no I/O, no clock, no randomness).

Covers the glossary's identifiers (DOMAIN.md): plate types and plate numbers,
VINs (ISO 3779 / GB 16735 check digit), resident ID numbers (GB 11643-1999
MOD 11-2), licence file numbers and classes, violation codes (the second digit
is the points, R-ADJ-3), penalty decision numbers, and the masking of personal
data in responses (R-Q-4).

Conventions: ``is_valid_x`` answers a bool and never raises; ``parse_x`` /
``normalise_x`` return the canonical form or raise :class:`DomainError` with a
stable ``INVALID_*`` code (R-ERR-1). Error details never echo the input, since
it may be personal data.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import re
import unicodedata

from cqcommon.errors import (
    INVALID_DECISION_NO,
    INVALID_FILE_NO,
    INVALID_ID_NUMBER,
    INVALID_LICENCE_CLASS,
    INVALID_PLATE_NUMBER,
    INVALID_PLATE_TYPE,
    INVALID_VIN,
    INVALID_VIOLATION_CODE,
    DomainError,
    ErrorSpec,
)

# -- error codes ------------------------------------------------------------------------


def _fail(spec: ErrorSpec, reason: str) -> DomainError:
    """A ``DomainError`` for ``spec`` whose details say why, without echoing the input."""
    return DomainError(spec, details={"reason": reason})


def _clean(raw: str) -> str:
    """NFKC (full-width → ASCII), drop all whitespace, upper-case."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace()).upper()


# -- plate types ------------------------------------------------------------------------
class PlateType(enum.StrEnum):
    """National plate-type codes (号牌种类) used by this system."""

    LARGE_CAR = "01"
    SMALL_CAR = "02"
    MOTORCYCLE = "07"
    LARGE_NEV = "51"
    SMALL_NEV = "52"

    @property
    def name_zh(self) -> str:
        """The Chinese name of the plate type."""
        return PLATE_TYPE_NAMES_ZH[self]

    @property
    def is_new_energy(self) -> bool:
        """Whether plates of this type use a new-energy (8-character) number."""
        return self in (PlateType.LARGE_NEV, PlateType.SMALL_NEV)


PLATE_TYPE_NAMES_ZH: dict[PlateType, str] = {
    PlateType.LARGE_CAR: "大型汽车",
    PlateType.SMALL_CAR: "小型汽车",
    PlateType.MOTORCYCLE: "普通摩托车",
    PlateType.LARGE_NEV: "大型新能源汽车",
    PlateType.SMALL_NEV: "小型新能源汽车",
}


def parse_plate_type(raw: str | PlateType) -> PlateType:
    """The plate type for ``"02"`` / ``" 2 "``-free input; raises ``INVALID_PLATE_TYPE``."""
    try:
        return PlateType(_clean(raw))
    except ValueError:
        raise _fail(INVALID_PLATE_TYPE, "unknown") from None


def is_valid_plate_type(raw: str) -> bool:
    """Whether ``raw`` is one of the plate-type codes 01 02 07 51 52."""
    try:
        parse_plate_type(raw)
    except DomainError:
        return False
    return True


# -- plate numbers ----------------------------------------------------------------------
PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
CHONGQING_PROVINCE_CHAR = "渝"
CHONGQING_DISTRICT_LETTERS = "ABCDFGH"
# Letters allowed in plates (I and O are never used: they read as 1 and 0).
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_PLATE_SEPARATORS = "·•・"  # 渝A·12345 as printed on the plate
_P = f"[{PROVINCE_CHARS}]"
_L = "[A-HJ-NP-Z]"
_ORDINARY_RE = re.compile(f"{_P}{_L}[0-9A-HJ-NP-Z]{{5}}")
_SMALL_NEV_RE = re.compile(f"{_P}{_L}[DF][0-9A-HJ-NP-Z][0-9]{{4}}")
_LARGE_NEV_RE = re.compile(f"{_P}{_L}[0-9]{{5}}[DF]")


class PlateFormat(enum.StrEnum):
    """The shape of a plate number: ordinary (7 chars) or one of the two new-energy shapes."""

    ORDINARY = "ordinary"
    SMALL_NEV = "small_nev"
    LARGE_NEV = "large_nev"


_FORMAT_OF_TYPE: dict[PlateType, PlateFormat] = {
    PlateType.LARGE_CAR: PlateFormat.ORDINARY,
    PlateType.SMALL_CAR: PlateFormat.ORDINARY,
    PlateType.MOTORCYCLE: PlateFormat.ORDINARY,
    PlateType.LARGE_NEV: PlateFormat.LARGE_NEV,
    PlateType.SMALL_NEV: PlateFormat.SMALL_NEV,
}


def plate_format(plate_number: str) -> PlateFormat | None:
    """The format of an already-normalised plate number, or ``None`` if it has none.

    Ordinary: province + letter + 5 of [0-9A-Z without I/O] (渝A12345).
    Small NEV: province + letter + D/F + 1 letter-or-digit + 4 digits (渝AD12345).
    Large NEV: province + letter + 5 digits + D/F (渝A12345D).
    """
    if _ORDINARY_RE.fullmatch(plate_number):
        return PlateFormat.ORDINARY
    if _SMALL_NEV_RE.fullmatch(plate_number):
        return PlateFormat.SMALL_NEV
    if _LARGE_NEV_RE.fullmatch(plate_number):
        return PlateFormat.LARGE_NEV
    return None


def normalise_plate_number(raw: str, plate_type: str | PlateType | None = None) -> str:
    """The canonical plate number (``" 渝a·12345 "`` → ``"渝A12345"``).

    With ``plate_type`` the format must fit the type: 51/52 need the new-energy
    shape, 01/02/07 the ordinary one. Raises ``INVALID_PLATE_NUMBER`` (or
    ``INVALID_PLATE_TYPE`` for an unknown type).
    """
    plate = "".join(ch for ch in _clean(raw) if ch not in _PLATE_SEPARATORS)
    fmt = plate_format(plate)
    if fmt is None:
        raise _fail(INVALID_PLATE_NUMBER, "format")
    if plate_type is not None and _FORMAT_OF_TYPE[parse_plate_type(plate_type)] is not fmt:
        raise _fail(INVALID_PLATE_NUMBER, "type_mismatch")
    return plate


def parse_plate(plate_type: str | PlateType, plate_number: str) -> tuple[PlateType, str]:
    """Validate a (plate type, plate number) pair together; returns both normalised."""
    ptype = parse_plate_type(plate_type)
    return ptype, normalise_plate_number(plate_number, ptype)


def is_valid_plate_number(raw: str, plate_type: str | PlateType | None = None) -> bool:
    """Whether ``raw`` is a plate number (of a format fitting ``plate_type`` when given)."""
    try:
        normalise_plate_number(raw, plate_type)
    except DomainError:
        return False
    return True


def is_chongqing_plate(plate_number: str) -> bool:
    """Whether the plate is a valid plate issued in Chongqing (starts with 渝)."""
    try:
        return normalise_plate_number(plate_number)[0] == CHONGQING_PROVINCE_CHAR
    except DomainError:
        return False


# -- VIN --------------------------------------------------------------------------------
VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_TRANSLITERATION: dict[str, int] = (
    {str(d): d for d in range(10)}
    | dict(zip("ABCDEFGH", range(1, 9), strict=True))
    | dict(zip("JKLMN", range(1, 6), strict=True))
    | {"P": 7, "R": 9}
    | dict(zip("STUVWXYZ", range(2, 10), strict=True))
)
_VIN_RE = re.compile(f"[{VIN_ALPHABET}]{{17}}")


def vin_check_digit(vin: str) -> str:
    """The ISO 3779 / GB 16735 check character for a 17-char VIN (position 9 is ignored).

    Sum of transliterated value x weight over all positions, mod 11; 10 is ``X``.
    Raises ``INVALID_VIN`` when ``vin`` is not 17 VIN characters.
    """
    text = _clean(vin)
    if len(text) != 17 or not _VIN_RE.fullmatch(text[:8] + "0" + text[9:]):
        raise _fail(INVALID_VIN, "format")
    total = sum(VIN_TRANSLITERATION[c] * w for c, w in zip(text, VIN_WEIGHTS, strict=True))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def with_vin_check_digit(vin: str) -> str:
    """``vin`` with position 9 replaced by its correct check character."""
    text = _clean(vin)
    return text[:8] + vin_check_digit(text) + text[9:]


def normalise_vin(raw: str) -> str:
    """The canonical VIN (upper case, no spaces); raises ``INVALID_VIN`` (format, check digit)."""
    vin = _clean(raw)
    if len(vin) != 17:
        raise _fail(INVALID_VIN, "length")
    if not _VIN_RE.fullmatch(vin):
        raise _fail(INVALID_VIN, "characters")
    if vin[8] != vin_check_digit(vin):
        raise _fail(INVALID_VIN, "check_digit")
    return vin


def is_valid_vin(raw: str) -> bool:
    """Whether ``raw`` is a 17-char VIN without I/O/Q whose check digit is right."""
    try:
        normalise_vin(raw)
    except DomainError:
        return False
    return True


def vin_last6(vin: str) -> str:
    """The last 6 characters of a VIN (what queries give), upper case."""
    return _clean(vin)[-6:]


def is_valid_vin_proof(raw: str) -> bool:
    """Whether ``raw`` can be given as VIN proof: 6 VIN characters or a full valid VIN."""
    given = _clean(raw)
    if len(given) == 6:
        return all(c in VIN_ALPHABET for c in given)
    return is_valid_vin(given)


def parse_vin_proof(raw: str) -> str:
    """A VIN given as proof (R-Q-1): the full VIN (check digit verified) or its last 6
    characters, upper case; anything else raises ``INVALID_VIN``."""
    if not is_valid_vin_proof(raw):
        raise _fail(INVALID_VIN, "format")
    return normalise_vin(raw) if is_valid_vin(raw) else vin_last6(raw)


def vin_matches(full_vin: str, given: str) -> bool:
    """Whether ``given`` (the last 6 or the full VIN, any case/spacing) matches ``full_vin``.

    Compared in constant time; anything of another length never matches.
    """
    vin = _clean(full_vin)
    proof = _clean(given)
    if len(proof) == 6:
        vin = vin[-6:]
    elif len(proof) != 17:
        return False
    return hmac.compare_digest(vin.encode(), proof.encode())


# -- resident ID numbers (GB 11643-1999) ------------------------------------------------
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
# First two digits of the administrative division code (GB/T 2260) incl. 81/82/83
# for residence permits of Hong Kong, Macao and Taiwan residents.
PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63"}
    | {"64", "65", "71", "81", "82", "83"}
)
CHONGQING_PROVINCE_CODE = "50"
_ID_RE = re.compile(r"[0-9]{17}[0-9X]")


def id_check_char(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits of an ID number (may be ``X``)."""
    if len(first17) < 17 or not first17[:17].isascii() or not first17[:17].isdigit():
        raise _fail(INVALID_ID_NUMBER, "format")
    total = sum(int(c) * w for c, w in zip(first17[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def id_birth_date(id_number: str) -> dt.date:
    """The birth date encoded in positions 7-14; raises ``INVALID_ID_NUMBER`` if impossible."""
    text = _clean(id_number)
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise _fail(INVALID_ID_NUMBER, "birth_date") from None
    if born.year < 1900:
        raise _fail(INVALID_ID_NUMBER, "birth_date")
    return born


def parse_id_number(raw: str, *, today: dt.date | None = None) -> str:
    """The canonical ID number (``x`` → ``X``); raises ``INVALID_ID_NUMBER``.

    Checks: 18 chars, a known province code, a real birth date from 1900 on (and not
    after ``today`` when given), and the MOD 11-2 check character. Licence numbers
    are ID numbers, so this also parses ``licence_no``.
    """
    text = _clean(raw)
    if not _ID_RE.fullmatch(text):
        raise _fail(INVALID_ID_NUMBER, "format")
    if text[:2] not in PROVINCE_CODES:
        raise _fail(INVALID_ID_NUMBER, "region")
    born = id_birth_date(text)
    if today is not None and born > today:
        raise _fail(INVALID_ID_NUMBER, "birth_date")
    if text[17] != id_check_char(text):
        raise _fail(INVALID_ID_NUMBER, "check_char")
    return text


def is_valid_id_number(raw: str, *, today: dt.date | None = None) -> bool:
    """Whether ``raw`` is a valid 18-char resident ID number."""
    try:
        parse_id_number(raw, today=today)
    except DomainError:
        return False
    return True


def id_region_code(id_number: str) -> str:
    """The 6-digit administrative division code of an ID number."""
    return _clean(id_number)[:6]


def is_chongqing_id_number(id_number: str) -> bool:
    """Whether a valid ID number was issued in Chongqing (region code ``50xxxx``)."""
    return is_valid_id_number(id_number) and id_region_code(id_number).startswith(
        CHONGQING_PROVINCE_CODE
    )


def id_is_male(id_number: str) -> bool:
    """Sex from the 17th digit: odd is male, even is female."""
    return int(_clean(id_number)[16]) % 2 == 1


# -- driver licences --------------------------------------------------------------------
class LicenceClass(enum.StrEnum):
    """Licence classes (准驾车型)."""

    A1 = "A1"
    A2 = "A2"
    A3 = "A3"
    B1 = "B1"
    B2 = "B2"
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    D = "D"
    E = "E"
    F = "F"
    M = "M"
    N = "N"
    P = "P"

    @property
    def name_zh(self) -> str:
        """The Chinese name of the class."""
        return LICENCE_CLASS_NAMES_ZH[self]


LICENCE_CLASS_NAMES_ZH: dict[LicenceClass, str] = {
    LicenceClass.A1: "大型客车",
    LicenceClass.A2: "重型牵引挂车",
    LicenceClass.A3: "城市公交车",
    LicenceClass.B1: "中型客车",
    LicenceClass.B2: "大型货车",
    LicenceClass.C1: "小型汽车",
    LicenceClass.C2: "小型自动挡汽车",
    LicenceClass.C3: "低速载货汽车",
    LicenceClass.C4: "三轮汽车",
    LicenceClass.C5: "残疾人专用小型自动挡载客汽车",
    LicenceClass.C6: "轻型牵引挂车",
    LicenceClass.D: "普通三轮摩托车",
    LicenceClass.E: "普通二轮摩托车",
    LicenceClass.F: "轻便摩托车",
    LicenceClass.M: "轮式专用机械车",
    LicenceClass.N: "无轨电车",
    LicenceClass.P: "有轨电车",
}
_CLASS_RE = re.compile(r"[ABC][1-6]|[DEFMNP]")


def parse_licence_class(raw: str | LicenceClass) -> LicenceClass:
    """One licence class (``"c1"`` → ``C1``); raises ``INVALID_LICENCE_CLASS``."""
    try:
        return LicenceClass(_clean(raw))
    except ValueError:
        raise _fail(INVALID_LICENCE_CLASS, "unknown") from None


def split_licence_classes(raw: str) -> tuple[LicenceClass, ...]:
    """All classes of a combined entry (``"C1E"`` or ``"C1/E"`` → ``(C1, E)``)."""
    text = "".join(ch for ch in _clean(raw) if ch not in "/,、")
    parts = _CLASS_RE.findall(text)
    if not text or "".join(parts) != text:
        raise _fail(INVALID_LICENCE_CLASS, "unknown")
    return tuple(parse_licence_class(p) for p in parts)


def is_valid_licence_class(raw: str) -> bool:
    """Whether ``raw`` is one licence class or a combination such as ``C1E``."""
    try:
        split_licence_classes(raw)
    except DomainError:
        return False
    return True


def is_ab_class(cls: str | LicenceClass) -> bool:
    """Whether the licence is "A/B class" (R-ADJ-2): any of its classes starts with A or B."""
    return any(c.value[0] in "AB" for c in split_licence_classes(cls))


_FILE_NO_RE = re.compile(r"[0-9]{12}")


def parse_file_no(raw: str) -> str:
    """The licence file number (档案编号): exactly 12 digits; raises ``INVALID_FILE_NO``."""
    text = _clean(raw)
    if not _FILE_NO_RE.fullmatch(text):
        raise _fail(INVALID_FILE_NO, "format")
    return text


def is_valid_file_no(raw: str) -> bool:
    """Whether ``raw`` is a 12-digit licence file number."""
    return _FILE_NO_RE.fullmatch(_clean(raw)) is not None


# -- violation codes --------------------------------------------------------------------
_CODE_RE = re.compile(r"[0-9]{4,5}")


def parse_violation_code(raw: str) -> str:
    """A violation code: 4 or 5 digits; raises ``INVALID_VIOLATION_CODE``."""
    text = _clean(raw)
    if not _CODE_RE.fullmatch(text):
        raise _fail(INVALID_VIOLATION_CODE, "format")
    return text


def is_valid_violation_code(raw: str) -> bool:
    """Whether ``raw`` is a 4- or 5-digit violation code."""
    return _CODE_RE.fullmatch(_clean(raw)) is not None


def points_of_code(code: str) -> int:
    """The points a code carries: its second digit (R-ADJ-3: ``1039`` → 0, ``1625`` → 6)."""
    return int(parse_violation_code(code)[1])


# -- penalty decision numbers -----------------------------------------------------------
_DECISION_RE = re.compile(r"[0-9]{16}")


def parse_decision_no(raw: str) -> str:
    """A penalty decision number: 16 digits whose first 6 are a division code.

    The division code must start with a known province code. Raises ``INVALID_DECISION_NO``.
    """
    text = _clean(raw)
    if not _DECISION_RE.fullmatch(text):
        raise _fail(INVALID_DECISION_NO, "format")
    if text[:2] not in PROVINCE_CODES:
        raise _fail(INVALID_DECISION_NO, "division")
    return text


def is_valid_decision_no(raw: str) -> bool:
    """Whether ``raw`` is a well-formed decision number."""
    try:
        parse_decision_no(raw)
    except DomainError:
        return False
    return True


def decision_division_code(decision_no: str) -> str:
    """The issuing authority's 6-digit division code."""
    return parse_decision_no(decision_no)[:6]


def is_chongqing_decision(decision_no: str) -> bool:
    """Whether a well-formed decision was issued in Chongqing (``50xxxx``; R-PAY-1)."""
    return is_valid_decision_no(decision_no) and _clean(decision_no).startswith(
        CHONGQING_PROVINCE_CODE
    )


# -- masking (R-Q-4) --------------------------------------------------------------------
def _mask_keep(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing chars, star the rest (same length)."""
    hidden = len(text) - head - tail
    return text[:head] + "*" * hidden + (text[len(text) - tail :] if tail else "")


def mask_id_number(value: str) -> str:
    """``500101199001011234`` → ``5001**********1234`` (R-Q-4).

    Keeps the first 4 and last 4 of 9+ characters; shorter input keeps only its last
    char (at most a quarter of it). Masking a masked value changes nothing.
    """
    n = len(value)
    if n >= 9:
        return _mask_keep(value, 4, 4)
    return _mask_keep(value, 0, 1 if n >= 4 else 0)


def mask_phone(value: str) -> str:
    """``13900005678`` → ``139****5678`` (R-Q-4).

    Keeps the first 3 and last 4 of 8+ characters; shorter input keeps only the last 2
    (or nothing under 4). Idempotent.
    """
    n = len(value)
    if n >= 8:
        return _mask_keep(value, 3, 4)
    return _mask_keep(value, 0, 2 if n >= 4 else 0)


def mask_name(value: str) -> str:
    """``张伟`` → ``张*``, ``欧阳娜娜`` → ``欧***`` (R-Q-4): keep the first character.

    A one-character value becomes ``*``. Idempotent.
    """
    if len(value) <= 1:
        return "*" * len(value)
    return _mask_keep(value, 1, 0)
