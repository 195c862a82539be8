"""The sandbox demo roster (SANDBOX.md, R-SBX-1): fixed people, vehicles, licences and the
violations each persona needs, as plain records of the registry domain.

Ids are **listed literals** (random uuid4 values generated once and pasted here), so they
are the same on every run and pinned when the roster is imported, yet none of them can be
computed from the person's ID number, phone or name or from a plate or VIN. Plates, VINs,
ID numbers, file numbers and decision numbers are literals other teams' demo scripts rely
on. Only dates move: they are relative to the ``today`` argument so that, e.g., 赵敏's
decision is always overdue by 20 days.

Reserved ranges keep the roster apart from synthetic data: all-digit ordinary plates,
VIN plant code ``S`` (position 11), ID sequence numbers 9xx, file numbers ``5001…``,
decision serials ``9…`` after the division code, phones ``1380000000x``/``1390000000x``.

``python -m cqregistry sandbox-vins`` prints the VIN table (plate, plate type, VIN last 6;
:func:`format_roster_vin_table`). Pure data, no I/O: the loader in ``entrypoints`` turns
it into import records and RecordViolation requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from cqcommon.identifiers import LicenceClass, PlateType, points_of_code, vin_last6

from cqregistry.domain.catalogue import procedure_for_fine, violation_code
from cqregistry.domain.model import (
    SHANGHAI,
    Licence,
    LicenceStatus,
    Person,
    Vehicle,
    VehicleKind,
    Violation,
    ViolationSource,
    ViolationStatus,
)

DECISION_DUE_DAYS = 15  # R-PAY-2: due 15 days after the decision date


@dataclasses.dataclass(frozen=True, slots=True)
class DemoFollow:
    """A follow the sandbox starts with (owner consent already given)."""

    follower_person_id: uuid.UUID
    vehicle_id: uuid.UUID


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxRoster:
    """Everything the sandbox loads."""

    people: tuple[Person, ...]
    vehicles: tuple[Vehicle, ...]
    licences: tuple[Licence, ...]
    violations: tuple[Violation, ...]
    follows: tuple[DemoFollow, ...]

    def person(self, alipay_user_id: str) -> Person:
        """The persona logged in as ``sandbox:<alipay_user_id>``."""
        return next(p for p in self.people if p.alipay_user_id == alipay_user_id)

    def vehicle(self, plate_number: str) -> Vehicle:
        """The roster vehicle with this plate."""
        return next(v for v in self.vehicles if v.plate_number == plate_number)

    def licence_of(self, person: Person) -> Licence | None:
        """The person's licence, if any."""
        return next((lic for lic in self.licences if lic.person_id == person.person_id), None)

    def violations_of(self, vehicle: Vehicle) -> tuple[Violation, ...]:
        """The vehicle's violations, in roster order."""
        return tuple(v for v in self.violations if v.vehicle_id == vehicle.vehicle_id)


# (person_id, alipay_user_id | None, name, id_number, phone)
_PEOPLE: tuple[tuple[str, str | None, str, str, str], ...] = (
    (
        "7ea63454-509e-491c-b387-8e815317f169",
        "2088000000000001",
        "张伟",
        "500103198803159111",
        "13800000001",
    ),
    (
        "8cb71bcb-8329-4174-a5b3-1bd482805d2a",
        "2088000000000002",
        "李娜",
        "500105199207089222",
        "13800000002",
    ),
    (
        "f6a0dc8b-0786-4d7f-bec4-4d36e42ca483",
        "2088000000000003",
        "王强",
        "50011219791123933X",
        "13800000003",
    ),
    (
        "fdd32fbc-f32a-4d66-88a1-c2cdc595d85d",
        "2088000000000004",
        "刘洋",
        "50010619950520941X",
        "13800000004",
    ),
    (
        "26859c93-feea-41fe-b949-ccc1384cb3d3",
        "2088000000000005",
        "赵敏",
        "500108199009099525",
        "13800000005",
    ),
    (
        "9b856c03-b6f6-4105-bbd1-0cf6f5d684a3",
        "2088000000000006",
        "孙磊",
        "500109199302149815",
        "13800000006",
    ),
    (
        "04723dcf-19bf-4044-a343-f8aa30d94f16",
        "2088000000000007",
        "周婷",
        "50011019960618982X",
        "13800000007",
    ),
    (
        "d0b0bd20-bdc0-4c54-bad2-7395e63c322e",
        "2088000000000008",
        "吴昊",
        "500111199110309919",
        "13800000008",
    ),
    ("f2cb074e-b69e-4817-889a-04f0b4c25ee1", None, "陈静", "500107198512019624", "13900000005"),
    ("4c28de84-6dae-4f00-92ca-6a952b608108", None, "何军", "500113197504049711", "13900000009"),
)
# (licence_id, holder name, file_no, class, first issued, points)
_LICENCES: tuple[tuple[str, str, str, LicenceClass, dt.date, int], ...] = (
    (
        "6043679b-1936-4768-8ca3-3bf227ce8644",
        "张伟",
        "500100000001",
        LicenceClass.C1,
        dt.date(2010, 6, 18),
        3,
    ),
    (
        "e137851b-ff33-4dbd-a277-cc35fb734bc8",
        "李娜",
        "500100000002",
        LicenceClass.C1,
        dt.date(2014, 8, 20),
        9,
    ),
    (
        "0293a508-10a6-40cd-b1a5-a7e222f69078",
        "王强",
        "500100000003",
        LicenceClass.A2,
        dt.date(2005, 3, 10),
        0,
    ),
    (
        "ded99045-8cf7-471c-be92-967ef0be76c0",
        "刘洋",
        "500100000004",
        LicenceClass.C1,
        dt.date(2016, 9, 1),
        0,
    ),
    (
        "f3535b34-16c5-4eb8-a7ee-544ff9a6337d",
        "赵敏",
        "500100000005",
        LicenceClass.C1,
        dt.date(2012, 11, 11),
        2,
    ),
    (
        "faacc354-6614-4995-8133-0ef2c08fd24f",
        "孙磊",
        "500100000006",
        LicenceClass.C1,
        dt.date(2015, 4, 2),
        0,
    ),
    (
        "b0578b59-f65b-4f8e-bac4-2c52c116a9c6",
        "周婷",
        "500100000007",
        LicenceClass.C1,
        dt.date(2018, 7, 15),
        0,
    ),
    (
        "c2197023-063d-4922-9106-b630c78dc607",
        "吴昊",
        "500100000008",
        LicenceClass.C1,
        dt.date(2013, 12, 3),
        0,
    ),
)
# (vehicle_id, plate, type, VIN, owner name)
_VEHICLES: tuple[tuple[str, str, PlateType, str, str], ...] = (
    (
        "6e992e86-65a0-45d1-8734-f9de80f7ae30",
        "渝A12345",
        PlateType.SMALL_CAR,
        "LS5A3AJE7KS120345",
        "张伟",
    ),
    (
        "80715788-b865-4bcc-9830-200ef03d8372",
        "渝AD12345",
        PlateType.SMALL_NEV,
        "LGXCE4C75NS220568",
        "李娜",
    ),
    (
        "f1895917-c7da-4f13-8aa7-5317a84ef862",
        "渝B23456",
        PlateType.SMALL_CAR,
        "LVSRCAE2XHS323456",
        "王强",
    ),
    (
        "17aa071e-4e94-43df-bafd-868c2a47c8a0",
        "渝A67890",
        PlateType.SMALL_CAR,
        "LVGBK4EH4LS467890",
        "赵敏",
    ),
    (
        "db5d296e-e384-4647-becc-9e43defe6600",
        "渝C34567",
        PlateType.SMALL_CAR,
        "LSVAD2A13GS534567",
        "陈静",
    ),
    (
        "e4676f96-14cd-4edf-8539-525ab2ba3ff4",
        "渝A99999",
        PlateType.SMALL_CAR,
        "LFVA2A1J2MS699999",
        "何军",
    ),
)
# The three followers that make 渝A99999 "already followed by 3 users" (R-FOL-4).
_FOLLOWS: tuple[tuple[str, str], ...] = (
    ("孙磊", "渝A99999"),
    ("周婷", "渝A99999"),
    ("吴昊", "渝A99999"),
)


# (violation_id, source record id, plate, code, fine in fen, days before today, time, place);
# non-site and unhandled unless listed in _DECIDED. SBX-ZW-03 (over 200 yuan) is general
# procedure *without* a decision (DOMAIN.md): it stays unhandled until a counter handles it.
_VIOLATIONS: tuple[tuple[str, str, str, str, int, int, str, str], ...] = (
    # 张伟, the happy path: eligible 0-point and 3-point, one over 200 yuan, on-site unpaid, paid
    (
        "7f561983-8c01-476b-b9ae-0bd6b4334c34",
        "SBX-ZW-01",
        "渝A12345",
        "1039",
        20000,
        12,
        "09:41",
        "重庆市渝中区解放碑民族路",
    ),
    (
        "49cea71e-5699-4294-891c-486e3aec2457",
        "SBX-ZW-02",
        "渝A12345",
        "1345",
        10000,
        9,
        "18:22",
        "重庆市江北区北滨一路",
    ),
    (
        "6394622a-66c5-4c46-b9d6-9aaac7c65c48",
        "SBX-ZW-03",
        "渝A12345",
        "1636",
        50000,
        20,
        "14:05",
        "G50沪渝高速重庆段K1750+100",
    ),
    (
        "87a2ca40-7eaa-48c8-97eb-fd7c7951ea26",
        "SBX-ZW-04",
        "渝A12345",
        "1042",
        15000,
        5,
        "11:30",
        "重庆市渝北区新牌坊立交",
    ),
    (
        "a33dee54-9725-4584-b913-ffb69fbbc708",
        "SBX-ZW-05",
        "渝A12345",
        "1344",
        10000,
        60,
        "08:12",
        "重庆市沙坪坝区三峡广场",
    ),
    # 李娜, points boundary (R-ADJ-1): 9 + 3 = 12 allowed, 9 + 6 = 15 refused
    (
        "bf99d939-7289-4eaa-97bb-5b8e489b890f",
        "SBX-LN-01",
        "渝AD12345",
        "1352",
        20000,
        7,
        "07:55",
        "重庆市渝北区金开大道",
    ),
    (
        "59e981db-3f6a-4239-b31b-1ae9d643a044",
        "SBX-LN-02",
        "渝AD12345",
        "1625",
        20000,
        15,
        "21:03",
        "重庆市南岸区南坪正街",
    ),
    # 王强, A2 licence (R-ADJ-2): point-bearing refused, 0-point allowed
    (
        "90bfe4bf-8247-4f0b-bed4-e630fea632ae",
        "SBX-WQ-01",
        "渝B23456",
        "1344",
        10000,
        6,
        "16:40",
        "重庆市万州区北山大道",
    ),
    (
        "68ae8100-995d-4720-9b64-68740c0a9bc1",
        "SBX-WQ-02",
        "渝B23456",
        "1039",
        15000,
        3,
        "10:18",
        "重庆市万州区北山大道",
    ),
    # 赵敏: on-site decision 35 days ago, due after 15 days, so overdue by 20 (R-PAY-2)
    (
        "319aa975-42da-43e5-a3fe-b2e0debf9d0e",
        "SBX-ZM-01",
        "渝A67890",
        "1230",
        20000,
        35,
        "08:15",
        "重庆市九龙坡区杨家坪步行街",
    ),
    # 陈静's car (SMS consent) and 渝A99999 (follow quota): something for followers to see
    (
        "71017cc4-5c8e-4c32-bb6a-dde74d1b6b55",
        "SBX-CJ-01",
        "渝C34567",
        "1039",
        15000,
        10,
        "13:20",
        "重庆市九龙坡区杨家坪步行街",
    ),
    (
        "0270e826-f444-447e-8c47-f01ee22456e9",
        "SBX-HJ-01",
        "渝A99999",
        "1345",
        10000,
        8,
        "17:45",
        "重庆市江北区建新北路",
    ),
)
# record id -> (source, status, decision_no, decision days before today, driver's name)
_DECIDED: dict[str, tuple[ViolationSource, ViolationStatus, str, int, str]] = {
    "SBX-ZW-04": (
        ViolationSource.ON_SITE,
        ViolationStatus.HANDLED_UNPAID,
        "5001129000000001",
        5,
        "张伟",
    ),
    "SBX-ZW-05": (ViolationSource.NON_SITE, ViolationStatus.PAID, "5001069000000002", 50, "张伟"),
    "SBX-ZM-01": (
        ViolationSource.ON_SITE,
        ViolationStatus.HANDLED_UNPAID,
        "5001079000000003",
        35,
        "赵敏",
    ),
}


def _violation(
    row: tuple[str, str, str, str, int, int, str, str],
    today: dt.date,
    vehicles: dict[str, Vehicle],
    licences: dict[str, Licence],
) -> Violation:
    """Resolve a roster violation against ``today``."""
    violation_id, record_id, plate, code, fine_fen, days_ago, at, place = row
    violation_code(code)  # must be catalogued
    day = today - dt.timedelta(days=days_ago)
    source, status = ViolationSource.NON_SITE, ViolationStatus.UNHANDLED
    decision_no: str | None = None
    decided: dt.date | None = None
    licence_id: uuid.UUID | None = None
    if record_id in _DECIDED:
        source, status, decision_no, decided_days_ago, driver = _DECIDED[record_id]
        decided = today - dt.timedelta(days=decided_days_ago)
        licence_id = licences[driver].licence_id
    return Violation(
        violation_id=uuid.UUID(violation_id),
        source_record_id=record_id,
        vehicle_id=vehicles[plate].vehicle_id,
        licence_id=licence_id,
        code=code,
        occurred_at=dt.datetime.combine(day, dt.time.fromisoformat(at), tzinfo=SHANGHAI),
        place=place,
        fine_fen=fine_fen,
        points=points_of_code(code),
        source=source,
        procedure=procedure_for_fine(fine_fen),
        status=status,
        decision_no=decision_no,
        decision_date=decided,
        paid=status is ViolationStatus.PAID,
    )


def sandbox_roster(today: dt.date) -> SandboxRoster:
    """The SANDBOX.md roster; violation dates are relative to ``today`` (Asia/Shanghai)."""
    people = {
        name: Person(uuid.UUID(person_id), name, id_no, phone, alipay)
        for person_id, alipay, name, id_no, phone in _PEOPLE
    }
    licences = {
        name: Licence(
            licence_id=uuid.UUID(licence_id),
            person_id=people[name].person_id,
            licence_no=people[name].id_number,
            file_no=file_no,
            licence_class=cls,
            first_issued_on=first,
            points=points,
            status=LicenceStatus.NORMAL,
        )
        for licence_id, name, file_no, cls, first, points in _LICENCES
    }
    vehicles = {
        plate: Vehicle(
            vehicle_id=uuid.UUID(vehicle_id),
            plate_type=ptype,
            plate_number=plate,
            vin=vin,
            owner_person_id=people[owner].person_id,
            registered_in_chongqing=True,
            vehicle_kind=VehicleKind.PERSONAL_SMALL_CAR,
        )
        for vehicle_id, plate, ptype, vin, owner in _VEHICLES
    }
    return SandboxRoster(
        people=tuple(people.values()),
        vehicles=tuple(vehicles.values()),
        licences=tuple(licences.values()),
        violations=tuple(_violation(v, today, vehicles, licences) for v in _VIOLATIONS),
        follows=tuple(
            DemoFollow(people[name].person_id, vehicles[plate].vehicle_id)
            for name, plate in _FOLLOWS
        ),
    )


def roster_vin_table() -> tuple[tuple[str, str, str], ...]:
    """(plate number, plate type, VIN last 6) of every roster vehicle, for `make run` and README."""
    return tuple((plate, ptype.value, vin_last6(vin)) for _, plate, ptype, vin, _ in _VEHICLES)


def format_roster_vin_table() -> str:
    """The VIN table as aligned text."""
    lines = ["plate      type  VIN last 6"]
    lines += [f"{plate:<9}  {ptype:<4}  {last6}" for plate, ptype, last6 in roster_vin_table()]
    return "\n".join(lines)
