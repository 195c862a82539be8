"""A synthetic Chongqing-like data set that streams millions of rows in constant memory
(dev tooling behind ``make generate`` and the benchmarks; never part of a service).

Record ``i`` is one person who owns vehicle ``i``, holds licence ``i`` (about 85 %) and
has about ``violations_per_vehicle`` violations, all as the registry's record types
(:mod:`cqregistry.domain.model`). Fields every table must agree on (ID number, licence
holding, plate type) are pure functions of ``(seed, i)``; the rest comes from a
``Random`` seeded per table and per chunk of :data:`CHUNK` records, so any index range of
any table can be produced on its own (e.g. in parallel processes) and is identical to the
same range of a full run.

**Ids** are not derived from anything a reader of the data could know: each is an
HMAC-SHA256 of ``kind:index`` under ``id_key``, a random key per data set (see
``GenerateOptions.id_key``) that is handed to every worker producing a slice and never
stored. The same seed and key give the same data set; the seed alone (printed, reused)
gives the same people, plates and VINs but no way from a person's ID number to their id.

Unique by construction: plate numbers (bijection from the index; synthetic ordinary
plates contain 1-2 letters and synthetic small-NEV plates a letter after D/F, so they
never collide with the all-digit sandbox plates), VINs (position 11 is never ``S``,
reserved for the sandbox), ID numbers (sequence 000-899; the sandbox uses 9xx), file
numbers (``5002…``; sandbox ``5001…``) and decision numbers.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import hmac
import itertools
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

from cqcommon.identifiers import (
    ID_CHECK_CHARS,
    ID_WEIGHTS,
    VIN_ALPHABET,
    VIN_TRANSLITERATION,
    VIN_WEIGHTS,
    LicenceClass,
    PlateType,
)
from cqregistry.domain.catalogue import procedure_for_fine, violation_code_catalogue
from cqregistry.domain.model import (
    SHANGHAI,
    Licence,
    LicenceStatus,
    Person,
    Procedure,
    Vehicle,
    VehicleKind,
    Violation,
    ViolationCode,
    ViolationSource,
    ViolationStatus,
)

from cqdev.datagen.identifiers import CHONGQING_DIVISIONS

# How often each catalogue code occurs in synthetic data (relative weights).
_CODE_WEIGHTS: Final[dict[str, int]] = {
    "1019": 4,
    "1020": 2,
    "1034": 1,
    "1035": 1,
    "1039": 30,
    "1042": 3,
    "10390": 4,
    "10392": 1,
    "1101": 2,
    "1116": 1,
    "1120": 3,
    "1124": 1,
    "11081": 2,
    "1208": 6,
    "1211": 1,
    "1230": 2,
    "1240": 1,
    "12080": 2,
    "1301": 2,
    "1344": 8,
    "1345": 10,
    "1352": 15,
    "1357": 3,
    "13010": 1,
    "13440": 2,
    "13451": 1,
    "1603": 1,
    "1610": 1,
    "1625": 8,
    "1636": 3,
    "16250": 1,
    "16360": 1,
    "1903": 1,
    "1904": 1,
    "19010": 1,
}
ID_KEY_BYTES: Final = 32


# -- COPY rows --------------------------------------------------------------------------
Row = tuple[object, ...]
_Record = Person | Vehicle | Licence | ViolationCode | Violation


def _columns(record_type: type[_Record]) -> tuple[str, ...]:
    """COPY column order = the dataclass field order."""
    return tuple(f.name for f in dataclasses.fields(record_type))


PERSON_COLUMNS: Final = _columns(Person)
VEHICLE_COLUMNS: Final = _columns(Vehicle)
LICENCE_COLUMNS: Final = _columns(Licence)
VIOLATION_CODE_COLUMNS: Final = _columns(ViolationCode)
VIOLATION_COLUMNS: Final = _columns(Violation)
COPY_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "people": PERSON_COLUMNS,
    "vehicles": VEHICLE_COLUMNS,
    "licences": LICENCE_COLUMNS,
    "violation_codes": VIOLATION_CODE_COLUMNS,
    "violations": VIOLATION_COLUMNS,
}

PersonRow = tuple[uuid.UUID, str, str, str, str | None]
VehicleRow = tuple[uuid.UUID, str, str, str, uuid.UUID, bool, str]
LicenceRow = tuple[uuid.UUID, uuid.UUID, str, str, str, dt.date, int, str]
ViolationRow = tuple[
    uuid.UUID,
    str,
    uuid.UUID,
    uuid.UUID | None,
    str,
    dt.datetime,
    str,
    int,
    int,
    str,
    str,
    str,
    str | None,
    dt.date | None,
    bool,
]


def to_row(record: _Record) -> Row:
    """A record as a COPY row in :data:`COPY_COLUMNS` order; enums become plain ``str``."""
    return tuple(
        str(v) if isinstance(v, enum.Enum) else v
        for v in (getattr(record, f.name) for f in dataclasses.fields(record))
    )


# -- synthetic data ---------------------------------------------------------------------
CHUNK: Final = 1024
MAX_SYNTHETIC_VEHICLES: Final = 39_000_000
_MAX_VIOLATIONS: Final = 31  # per vehicle; violation serial = i * 32 + k
_M64: Final = (1 << 64) - 1
_LOW48: Final = (1 << 48) - 1
_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DISTRICTS: Final = "ABCDFGH"
_PLANTS: Final = "0123456789ABCDEFGHJKLMNPRTUVWXYZ"  # VIN chars without S (sandbox)
_YEAR_CODES: Final = "89ABCDEFGHJKLMNPRS"  # model years 2008..2025
_BIRTH_FIRST: Final = dt.date(1955, 1, 1)
_BIRTH_DAYS: Final = (dt.date(2005, 12, 31) - _BIRTH_FIRST).days + 1
_ID_SEQUENCES: Final = 900  # 000-899; the sandbox uses 900-999
# plate type -> (share per 1000, WMIs, vehicle kinds with weights)
_TYPES: Final[dict[PlateType, tuple[int, tuple[str, ...], tuple[tuple[VehicleKind, int], ...]]]] = {
    PlateType.SMALL_CAR: (
        815,
        ("LS5", "LVS", "LSV", "LFV", "LGB", "LVG", "LHG", "LBV"),
        ((VehicleKind.PERSONAL_SMALL_CAR, 94), (VehicleKind.COMMERCIAL_SMALL_CAR, 6)),
    ),
    PlateType.SMALL_NEV: (
        85,
        ("LGX", "LC0", "LRW", "LNB"),
        ((VehicleKind.PERSONAL_SMALL_CAR, 88), (VehicleKind.COMMERCIAL_SMALL_CAR, 12)),
    ),
    PlateType.MOTORCYCLE: (
        60,
        ("LF3", "LZS", "LBP", "LAL"),
        ((VehicleKind.PERSONAL_MOTORCYCLE, 1),),
    ),
    PlateType.LARGE_CAR: (
        30,
        ("LWL", "LZF", "LGA"),
        ((VehicleKind.LARGE_TRUCK, 3), (VehicleKind.LARGE_PASSENGER, 1)),
    ),
    PlateType.LARGE_NEV: (10, ("LZY", "LKL"), ((VehicleKind.LARGE_PASSENGER, 1),)),
}
_ORDINARY_TYPES: Final = (PlateType.SMALL_CAR, PlateType.MOTORCYCLE, PlateType.LARGE_CAR)
# ordinary synthetic serials: 5 positions, 1 or 2 of them letters, the rest digits
_ORD_CLASSES: Final = tuple(pos for k in (1, 2) for pos in itertools.combinations(range(5), k))
_ORD_SIZES: Final = tuple(24 ** len(p) * 10 ** (5 - len(p)) for p in _ORD_CLASSES)
_ORD_OFFSETS: Final = tuple(itertools.accumulate(_ORD_SIZES, initial=0))
_PLATE_SPACE: Final = {
    "ordinary": 7 * _ORD_OFFSETS[-1],
    "small_nev": 7 * 2 * 24 * 10**4,
    "large_nev": 7 * 2 * 10**5,
}
_SURNAMES: Final = (
    "王王王李李李张张张刘刘陈陈杨杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田"
    "董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛"
    "段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃戴莫孔向向汤冉冉"
)
_COMPOUND_SURNAMES: Final = ("欧阳", "司马", "上官", "诸葛", "司徒")
_GIVEN_MALE: Final = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国志文"
_GIVEN_FEMALE: Final = "娜敏静丽艳芳娟霞秀英玲燕红梅琳雪倩颖慧婷欣怡佳悦璐晶莉丹萍蓉瑶"
_PHONE_PREFIXES: Final = tuple(
    str(n) for n in (133, 135, 136, 137, 138, 139, 150, 151, 152, 157, 158, 159, 166, 173)
) + tuple(str(n) for n in (177, 180, 181, 182, 183, 185, 186, 187, 188, 189, 199))
# (place, division code of the authority there); the last ones are outside Chongqing (R-Q-2)
PLACES: Final[tuple[tuple[str, str], ...]] = (
    ("重庆市渝中区解放碑民族路", "500103"),
    ("重庆市渝中区长江一路", "500103"),
    ("重庆市江北区北滨一路", "500105"),
    ("重庆市江北区建新北路", "500105"),
    ("重庆市渝北区金开大道", "500112"),
    ("重庆市渝北区新牌坊立交", "500112"),
    ("重庆市沙坪坝区三峡广场", "500106"),
    ("重庆市九龙坡区杨家坪步行街", "500107"),
    ("重庆市内环快速路石桥铺立交", "500107"),
    ("重庆市南岸区南坪正街", "500108"),
    ("重庆市大渡口区春晖路", "500104"),
    ("重庆市巴南区龙洲大道", "500113"),
    ("重庆市北碚区天生路", "500109"),
    ("重庆市万州区北山大道", "500101"),
    ("重庆市涪陵区太白大道", "500102"),
    ("重庆市永川区人民大道", "500118"),
    ("重庆市江津区几江大道", "500116"),
    ("重庆市合川区南津街", "500117"),
    ("G85银昆高速重庆段K1520+300", "500000"),
    ("G50沪渝高速重庆段K1750+100", "500000"),
    ("四川省成都市武侯区人民南路四段", "510107"),
    ("贵州省贵阳市云岩区中华北路", "520103"),
    ("湖北省武汉市江汉区解放大道", "420103"),
    ("陕西省西安市雁塔区长安南路", "610113"),
)
_PLACE_WEIGHTS: Final = (8, 6, 6, 4, 8, 4, 6, 6, 6, 6, 3, 4, 3, 4, 3, 3, 3, 3, 2, 2, 2, 1, 1, 1)


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-mixed 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _affine(rng: random.Random, size: int) -> tuple[int, int]:
    """A random bijection ``x -> (a*x + b) % size`` of ``range(size)``, as ``(a, b)``."""
    while True:
        a = rng.randrange(size // 3, size)
        if math.gcd(a, size) == 1:
            return a, rng.randrange(size)


def _weighted_table(weights: Sequence[int]) -> tuple[int, ...]:
    """Index lookup table: index ``j`` appears ``weights[j]`` times."""
    return tuple(j for j, w in enumerate(weights) for _ in range(w))


_VIN_POS: Final = tuple(
    {c: VIN_TRANSLITERATION[c] * w for c in VIN_TRANSLITERATION} for w in VIN_WEIGHTS
)


def _weighted_digits(text: str, weights: Sequence[int]) -> int:
    """Sum of digit x weight, for precomputed check-digit contributions."""
    return sum(int(c) * w for c, w in zip(text, weights, strict=True))


_SERIAL_HI: Final = tuple(_weighted_digits(f"{n:03d}", (7, 6, 5)) for n in range(1000))
_SERIAL_LO: Final = tuple(_weighted_digits(f"{n:03d}", (4, 3, 2)) for n in range(1000))
_ID_SEQ_SUM: Final = tuple(_weighted_digits(f"{n:03d}", ID_WEIGHTS[14:]) for n in range(1000))
_REGION_SUM: Final = tuple(_weighted_digits(r, ID_WEIGHTS[:6]) for r in CHONGQING_DIVISIONS)


@functools.cache
def _birth_table() -> tuple[tuple[str, int, dt.date], ...]:
    """For each birth day offset: (YYYYMMDD, its weighted ID-digit sum, the date)."""
    out = []
    for n in range(_BIRTH_DAYS):
        day = _BIRTH_FIRST + dt.timedelta(days=n)
        text = f"{day:%Y%m%d}"
        out.append((text, _weighted_digits(text, ID_WEIGHTS[6:14]), day))
    return tuple(out)


@dataclasses.dataclass(frozen=True, slots=True)
class _Slot:
    """One of the 1000 slots of the plate-type pattern, with everything precomputed."""

    ptype: PlateType
    ptype_code: str  # ptype.value, as a plain str for COPY rows
    fmt: str  # which plate space: ordinary | small_nev | large_nev
    fmt_per_period: int  # slots per 1000 drawing from the same plate space
    plate_rank: int  # rank among those slots
    type_per_period: int  # slots per 1000 of the same plate type
    vin_rank: int  # rank among those slots
    plate_perm: tuple[int, int, int]  # (a, b, size) of the plate-space bijection
    vin_perm: tuple[int, int, int]  # (a, b, size) of the VIN-space bijection
    wmis: tuple[str, ...]
    kind_a: str  # vehicle kind for a draw below kind_share, kind_b otherwise
    kind_b: str
    kind_share: float


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything derived once from the seed."""

    seed: int
    slots: tuple[_Slot, ...]
    vds: dict[str, tuple[tuple[str, int], ...]]  # per WMI: (VDS, check sum of WMI + VDS)
    id_perm: tuple[int, int]
    file_perm: tuple[int, int]
    id_key: bytes


def _format_of(ptype: PlateType) -> str:
    """Which synthetic plate space a type draws from."""
    if ptype is PlateType.SMALL_NEV:
        return "small_nev"
    return "large_nev" if ptype is PlateType.LARGE_NEV else "ordinary"


def _vin_space(ptype: PlateType) -> int:
    """Number of distinct (WMI, model year, serial) combinations for a plate type."""
    return len(_TYPES[ptype][1]) * len(_YEAR_CODES) * 10**6


@functools.lru_cache(maxsize=8)
def _plan(seed: int, id_key: bytes) -> _Plan:
    """Build the per-seed plan (plate-type pattern, permutations, id prefixes)."""
    rng = random.Random(f"cqregistry:{seed}:plan")
    slots = [t for t, (share, _, _) in _TYPES.items() for _ in range(share)]
    rng.shuffle(slots)
    fmt_count = Counter(_format_of(t) for t in slots)
    type_count = Counter(slots)
    plate_perm = {f: (*_affine(rng, n), n) for f, n in _PLATE_SPACE.items()}
    vin_perm = {t: (*_affine(rng, _vin_space(t)), _vin_space(t)) for t in _TYPES}
    seen_fmt: Counter[str] = Counter()
    seen_type: Counter[PlateType] = Counter()
    plan_slots = []
    for t in slots:
        fmt = _format_of(t)
        kinds = _TYPES[t][2]
        kind_b, share_b = kinds[-1]
        plan_slots.append(
            _Slot(
                ptype=t,
                ptype_code=t.value,
                fmt=fmt,
                fmt_per_period=fmt_count[fmt],
                plate_rank=seen_fmt[fmt],
                type_per_period=type_count[t],
                vin_rank=seen_type[t],
                plate_perm=plate_perm[fmt],
                vin_perm=vin_perm[t],
                wmis=_TYPES[t][1],
                kind_a=kinds[0][0].value,
                kind_b=kind_b.value,
                kind_share=1.0 if len(kinds) == 1 else kinds[0][1] / (kinds[0][1] + share_b),
            )
        )
        seen_fmt[fmt] += 1
        seen_type[t] += 1
    vds: dict[str, tuple[tuple[str, int], ...]] = {}
    for _, wmis, _ in _TYPES.values():
        for wmi in wmis:
            codes = ("".join(rng.choice(VIN_ALPHABET) for _ in range(5)) for _ in range(6))
            vds[wmi] = tuple(
                (code, sum(p[c] for p, c in zip(_VIN_POS, wmi + code, strict=False)))
                for code in codes
            )
    if len(id_key) < 16:
        raise ValueError("id_key must be at least 16 random bytes")
    return _Plan(
        seed=seed,
        slots=tuple(plan_slots),
        vds=vds,
        id_perm=_affine(rng, len(CHONGQING_DIVISIONS) * _BIRTH_DAYS * _ID_SEQUENCES),
        file_perm=_affine(rng, 10**8),
        id_key=id_key,
    )


def _plate(slot: _Slot, i: int) -> str:
    """Plate number of vehicle ``i`` (in ``slot``): a bijection into its plate space."""
    j = (i // 1000) * slot.fmt_per_period + slot.plate_rank
    a, b, size = slot.plate_perm
    x, district = divmod((a * j + b) % size, 7)
    fmt = slot.fmt
    head = "渝" + _DISTRICTS[district]
    if fmt == "small_nev":
        x, digits = divmod(x, 10**4)
        x, letter = divmod(x, 24)
        number = f"{head}{'DF'[x]}{_LETTERS[letter]}{digits:04d}"
    elif fmt == "large_nev":
        x, digits = divmod(x, 10**5)
        number = f"{head}{digits:05d}{'DF'[x]}"
    else:
        cls = bisect.bisect_right(_ORD_OFFSETS, x) - 1
        digits, letters = divmod(x - _ORD_OFFSETS[cls], 24 ** len(_ORD_CLASSES[cls]))
        ds = f"{digits:0{5 - len(_ORD_CLASSES[cls])}d}"
        if len(_ORD_CLASSES[cls]) == 1:
            (p,) = _ORD_CLASSES[cls]
            number = f"{head}{ds[:p]}{_LETTERS[letters]}{ds[p:]}"
        else:
            p, q = _ORD_CLASSES[cls]
            hi, lo = divmod(letters, 24)
            number = f"{head}{ds[:p]}{_LETTERS[hi]}{ds[p : q - 1]}{_LETTERS[lo]}{ds[q - 1 :]}"
    return number


def _vin(plan: _Plan, slot: _Slot, i: int, rng: random.Random) -> str:
    """A unique VIN for vehicle ``i`` (bijection per plate type) with a valid check digit."""
    rank = (i // 1000) * slot.type_per_period + slot.vin_rank
    a, b, size = slot.vin_perm
    x, serial = divmod((a * rank + b) % size, 10**6)
    wmi_idx, year_idx = divmod(x, len(_YEAR_CODES))
    wmi = slot.wmis[wmi_idx]
    vds, total = plan.vds[wmi][int(rng.random() * 6)]
    year = _YEAR_CODES[year_idx]
    plant = _PLANTS[int(rng.random() * len(_PLANTS))]
    total += _VIN_POS[9][year] + _VIN_POS[10][plant] + _SERIAL_HI[serial // 1000]
    total += _SERIAL_LO[serial % 1000]
    rem = total % 11
    return f"{wmi}{vds}{'X' if rem == 10 else rem}{year}{plant}{serial:06d}"


def _id_number(plan: _Plan, i: int) -> tuple[str, dt.date, bool]:
    """The unique ID number of person ``i``, their birth date and whether male."""
    a, b = plan.id_perm
    x, seq = divmod((a * i + b) % (len(CHONGQING_DIVISIONS) * _BIRTH_DAYS * _ID_SEQUENCES), 900)
    region_idx, day = divmod(x, _BIRTH_DAYS)
    text, day_sum, born = _birth_table()[day]
    total = _REGION_SUM[region_idx] + day_sum + _ID_SEQ_SUM[seq]
    id_number = f"{CHONGQING_DIVISIONS[region_idx]}{text}{seq:03d}{ID_CHECK_CHARS[total % 11]}"
    return id_number, born, seq % 2 == 1


def _holds_licence(plan: _Plan, i: int, born: dt.date, today: dt.date) -> bool:
    """Whether person ``i`` holds a licence (~85 %, and only once 18)."""
    return _mix64(plan.seed * 0x1F3D5B79 ^ i) % 100 < 85 and born.year + 18 < today.year


def _uuid(plan: _Plan, kind: str, n: int) -> uuid.UUID:
    """Synthetic id: HMAC-SHA256 of ``kind:n`` under the data set's random key, shaped as
    a version-4 UUID (122 bits; unique in practice, unknowable without the key)."""
    digest = hmac.digest(plan.id_key, f"{kind}:{n}".encode(), hashlib.sha256)
    return uuid.UUID(bytes=digest[:16], version=4)


_T = TypeVar("_T")


def _chunked(
    seed: int,
    table: str,
    start: int,
    stop: int,
    make: Callable[[int, random.Random], _T],
) -> Iterator[_T]:
    """Call ``make(i, rng)`` for each index; the ``Random`` is reseeded per chunk."""
    for chunk in range(start // CHUNK, -(-stop // CHUNK)):
        rng = random.Random(f"cqregistry:{seed}:{table}:{chunk}")
        lo = chunk * CHUNK
        for i in range(lo, min(lo + CHUNK, stop)):
            item = make(i, rng)
            if i >= start:
                yield item


def _check_range(vehicles: int, start: int, stop: int | None) -> int:
    """Validate the arguments; returns the effective ``stop``."""
    if not 0 <= vehicles <= MAX_SYNTHETIC_VEHICLES:
        raise ValueError(f"vehicles must be within 0..{MAX_SYNTHETIC_VEHICLES}")
    end = vehicles if stop is None else min(stop, vehicles)
    if start < 0 or end < start:
        raise ValueError("need 0 <= start <= stop")
    return end


def _check_rate(violations_per_vehicle: float) -> float:
    """Validate the mean number of violations per vehicle."""
    if not 0 <= violations_per_vehicle <= 20:
        raise ValueError("violations_per_vehicle must be within 0..20")
    return float(violations_per_vehicle)


def _person_row(plan: _Plan, i: int, rng: random.Random) -> PersonRow:
    """COPY row of person ``i``."""
    id_number, _, male = _id_number(plan, i)
    surname = (
        _COMPOUND_SURNAMES[int(rng.random() * 5)]
        if rng.random() < 0.01
        else _SURNAMES[int(rng.random() * len(_SURNAMES))]
    )
    pool = _GIVEN_MALE if male else _GIVEN_FEMALE
    given = pool[int(rng.random() * len(pool))]
    if rng.random() < 0.7:
        given += pool[int(rng.random() * len(pool))]
    phone = _PHONE_PREFIXES[int(rng.random() * len(_PHONE_PREFIXES))] + (
        f"{100000 + int(rng.random() * 99_900_000):08d}"
    )
    alipay = f"20881{i:011d}" if rng.random() < 0.6 else None
    return (_uuid(plan, "person", i), surname + given, id_number, phone, alipay)


def _vehicle_row(plan: _Plan, i: int, rng: random.Random) -> VehicleRow:
    """COPY row of vehicle ``i`` (owned by person ``i``)."""
    slot = plan.slots[i % 1000]
    vin = _vin(plan, slot, i, rng)
    kind = slot.kind_a if rng.random() < slot.kind_share else slot.kind_b
    return (
        _uuid(plan, "vehicle", i),
        slot.ptype_code,
        _plate(slot, i),
        vin,
        _uuid(plan, "person", i),
        True,
        kind,
    )


_CLASS_BY_TYPE: Final[dict[PlateType, tuple[LicenceClass, ...]]] = {
    PlateType.SMALL_CAR: (LicenceClass.C1,) * 8 + (LicenceClass.C2,) * 2,
    PlateType.SMALL_NEV: (LicenceClass.C1,) * 7 + (LicenceClass.C2,) * 3,
    PlateType.MOTORCYCLE: (LicenceClass.E,) * 7 + (LicenceClass.D, LicenceClass.C1, LicenceClass.F),
    PlateType.LARGE_CAR: (LicenceClass.B2,) * 5 + (LicenceClass.A2,) * 3 + (LicenceClass.A1,) * 2,
    PlateType.LARGE_NEV: (LicenceClass.A1,) * 4 + (LicenceClass.A3,) * 4 + (LicenceClass.B1,) * 2,
}


def _licence_row(plan: _Plan, i: int, rng: random.Random, today: dt.date) -> LicenceRow | None:
    """COPY row of licence ``i``, or ``None`` when person ``i`` holds none."""
    id_number, born, _ = _id_number(plan, i)
    if not _holds_licence(plan, i, born, today):
        return None
    classes = _CLASS_BY_TYPE[plan.slots[i % 1000].ptype]
    licence_class = classes[int(rng.random() * len(classes))]
    adult = dt.date(born.year + 18, born.month, min(born.day, 28))
    first_issued = adult + dt.timedelta(days=int(rng.random() * (today - adult).days))
    roll = rng.random()
    points = 0 if roll < 0.55 else (12 if roll > 0.99 else 1 + int(rng.random() * 11))
    status = LicenceStatus.OVER_POINTS if points >= 12 else LicenceStatus.NORMAL
    if status is LicenceStatus.NORMAL and rng.random() < 0.003:
        status = LicenceStatus.SUSPENDED
    a, b = plan.file_perm
    return (
        _uuid(plan, "licence", i),
        _uuid(plan, "person", i),
        id_number,
        f"5002{(a * i + b) % 10**8:08d}",
        licence_class.value,
        first_issued,
        points,
        status.value,
    )


@functools.cache
def _code_tables() -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """Weighted code index table, fine options per code, weighted place index table."""
    codes = violation_code_catalogue()
    fines = tuple(
        tuple(sorted({lo, hi, *range(((lo + 4999) // 5000) * 5000, hi + 1, 5000)}))
        for lo, hi in ((c.fine_min_fen, c.fine_max_fen) for c in codes)
    )
    weights = [_CODE_WEIGHTS[c.code] for c in codes]
    return _weighted_table(weights), fines, _weighted_table(_PLACE_WEIGHTS)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler (fine for the small means used here), capped."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit and k < _MAX_VIOLATIONS:
        k += 1
        p *= rng.random()
    return k


def _violation_rows(
    plan: _Plan, i: int, rng: random.Random, lam: float, today: dt.date
) -> list[ViolationRow]:
    """COPY rows of the violations of vehicle ``i``."""
    count = _poisson(rng, lam)
    if not count:
        return []
    code_table, fines, place_table = _code_tables()
    _, born, _ = _id_number(plan, i)
    licence_id = _uuid(plan, "licence", i) if _holds_licence(plan, i, born, today) else None
    rows: list[ViolationRow] = []
    for k in range(count):
        c = code_table[int(rng.random() * len(code_table))]
        code = violation_code_catalogue()[c].code
        options = fines[c]
        fine = options[int(rng.random() * len(options))]
        place, division = PLACES[place_table[int(rng.random() * len(place_table))]]
        day = today - dt.timedelta(days=1 + int(rng.random() * 1095))
        secs = int(rng.random() * 86400)
        occurred = dt.datetime(
            day.year, day.month, day.day, secs // 3600, secs // 60 % 60, secs % 60, tzinfo=SHANGHAI
        )
        on_site = rng.random() < 0.15
        roll = rng.random()
        if on_site:
            status = ViolationStatus.PAID if roll < 0.88 else ViolationStatus.HANDLED_UNPAID
            decided: dt.date | None = day
        else:
            status = (
                ViolationStatus.UNHANDLED
                if roll < 0.2
                else ViolationStatus.HANDLED_UNPAID
                if roll < 0.3
                else ViolationStatus.PAID
            )
            decided = (
                None
                if status is ViolationStatus.UNHANDLED
                else min(today, day + dt.timedelta(days=int(rng.random() * 30)))
            )
        serial = i * 32 + k
        rows.append(
            (
                _uuid(plan, "violation", serial),
                f"SYN-{plan.seed}-{serial}",
                _uuid(plan, "vehicle", i),
                None if decided is None else licence_id,
                code,
                occurred,
                place,
                fine,
                int(code[1]),
                (ViolationSource.ON_SITE if on_site else ViolationSource.NON_SITE).value,
                procedure_for_fine(fine).value,
                status.value,
                None if decided is None else f"{division}{serial:010d}",
                decided,
                status is ViolationStatus.PAID,
            )
        )
    return rows


def iter_rows_for_copy(
    table: str,
    *,
    seed: int,
    id_key: bytes,
    vehicles: int,
    today: dt.date,
    violations_per_vehicle: float = 1.5,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[Row]:
    """Stream COPY rows of one table (columns: ``COPY_COLUMNS[table]``) for indices
    ``start..stop`` of a synthetic data set of ``vehicles`` vehicles; ``id_key`` is the
    data set's random id key (every slice of one data set must get the same one).

    Tables: ``people``, ``vehicles``, ``licences``, ``violations`` and
    ``violation_codes`` (the catalogue; range arguments ignored). Values are
    ``UUID``, ``str``, ``int``, ``bool``, ``date``, aware ``datetime`` or ``None``.
    Constant memory; slices of the index range are independent, so a loader may
    split the work across processes.
    """
    if table == "violation_codes":
        yield from (to_row(c) for c in violation_code_catalogue())
        return
    end = _check_range(vehicles, start, stop)
    lam = _check_rate(violations_per_vehicle)
    plan = _plan(seed, id_key)
    if table == "people":
        yield from _chunked(seed, table, start, end, lambda i, r: _person_row(plan, i, r))
    elif table == "vehicles":
        yield from _chunked(seed, table, start, end, lambda i, r: _vehicle_row(plan, i, r))
    elif table == "licences":
        for row in _chunked(seed, table, start, end, lambda i, r: _licence_row(plan, i, r, today)):
            if row is not None:
                yield row
    elif table == "violations":
        for rows in _chunked(
            seed, table, start, end, lambda i, r: _violation_rows(plan, i, r, lam, today)
        ):
            yield from rows
    else:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted(COPY_COLUMNS)}")


# -- synthetic records as dataclasses ---------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class SyntheticRecord:
    """Record ``index``: a person, the vehicle they own, their licence and its violations."""

    index: int
    person: Person
    vehicle: Vehicle
    licence: Licence | None
    violations: tuple[Violation, ...]


def person_from_row(row: PersonRow) -> Person:
    """Rebuild a :class:`Person` from its COPY row."""
    return Person(*row)


def vehicle_from_row(row: VehicleRow) -> Vehicle:
    """Rebuild a :class:`Vehicle` from its COPY row."""
    vid, ptype, number, vin, owner, in_cq, kind = row
    return Vehicle(vid, PlateType(ptype), number, vin, owner, in_cq, VehicleKind(kind))


def licence_from_row(row: LicenceRow) -> Licence:
    """Rebuild a :class:`Licence` from its COPY row."""
    lid, pid, no, file_no, cls, first, points, status = row
    return Licence(lid, pid, no, file_no, LicenceClass(cls), first, points, LicenceStatus(status))


def violation_from_row(row: ViolationRow) -> Violation:
    """Rebuild a :class:`Violation` from its COPY row."""
    vid, src_id, veh, lic, code, at, place, fine, points, source, proc, status, no, day, paid = row
    return Violation(
        vid,
        src_id,
        veh,
        lic,
        code,
        at,
        place,
        fine,
        points,
        ViolationSource(source),
        Procedure(proc),
        ViolationStatus(status),
        no,
        day,
        paid,
    )


def synthetic(
    seed: int,
    vehicles: int,
    violations_per_vehicle: float,
    today: dt.date,
    *,
    id_key: bytes,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[SyntheticRecord]:
    """Lazily yield synthetic records ``start..stop`` (constant memory, deterministic).

    The same arguments (seed and ``id_key``) always give the same records; a slice equals the same slice
    of a full run, and each record matches :func:`iter_rows_for_copy`'s rows.
    """
    end = _check_range(vehicles, start, stop)
    lam = _check_rate(violations_per_vehicle)
    plan = _plan(seed, id_key)
    people = _chunked(seed, "people", start, end, lambda i, r: _person_row(plan, i, r))
    vehs = _chunked(seed, "vehicles", start, end, lambda i, r: _vehicle_row(plan, i, r))
    lics = _chunked(seed, "licences", start, end, lambda i, r: _licence_row(plan, i, r, today))
    vios = _chunked(
        seed, "violations", start, end, lambda i, r: _violation_rows(plan, i, r, lam, today)
    )
    for index, p, v, lic, vs in zip(range(start, end), people, vehs, lics, vios, strict=True):
        yield SyntheticRecord(
            index=index,
            person=person_from_row(p),
            vehicle=vehicle_from_row(v),
            licence=None if lic is None else licence_from_row(lic),
            violations=tuple(violation_from_row(r) for r in vs),
        )
