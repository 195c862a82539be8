"""The registry's record types: the plain data the police registry holds about people,
vehicles, licences, violation codes and violations (the sandbox roster is written in
them; dev tooling's synthetic generator produces them too).

Pure data (frozen dataclasses and string enums), no I/O. Ids are ``uuid.UUID`` values
the registry assigned at random (or the roster pinned); none is derived from a record's
personal fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from typing import Final
from zoneinfo import ZoneInfo

from cqcommon.identifiers import LicenceClass, PlateType

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")

__all__ = [
    "SHANGHAI",
    "Licence",
    "LicenceClass",
    "LicenceStatus",
    "Person",
    "PlateType",
    "Procedure",
    "Vehicle",
    "VehicleKind",
    "Violation",
    "ViolationCode",
    "ViolationSource",
    "ViolationStatus",
]


class VehicleKind(enum.StrEnum):
    """Use of a vehicle; R-USR-1 counts personal small cars and motorcycles."""

    PERSONAL_SMALL_CAR = "personal_small_car"
    COMMERCIAL_SMALL_CAR = "commercial_small_car"
    PERSONAL_MOTORCYCLE = "personal_motorcycle"
    LARGE_PASSENGER = "large_passenger"
    LARGE_TRUCK = "large_truck"


class LicenceStatus(enum.StrEnum):
    """State of a driver licence."""

    NORMAL = "normal"
    OVER_POINTS = "over_points"
    SUSPENDED = "suspended"


class ViolationSource(enum.StrEnum):
    """On-site (officer ticket) or non-site (camera)."""

    ON_SITE = "on_site"
    NON_SITE = "non_site"


class Procedure(enum.StrEnum):
    """Simple procedure (fine ≤ 200 yuan) or general procedure."""

    SIMPLE = "simple"
    GENERAL = "general"


class ViolationStatus(enum.StrEnum):
    """R-Q-3 violation status."""

    UNHANDLED = "unhandled"
    HANDLED_UNPAID = "handled_unpaid"
    PAID = "paid"


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """A real-name person; ``alipay_user_id`` is set for users of the mini-program."""

    person_id: uuid.UUID
    name: str
    id_number: str
    phone: str
    alipay_user_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered motor vehicle and its owner."""

    vehicle_id: uuid.UUID
    plate_type: PlateType
    plate_number: str
    vin: str
    owner_person_id: uuid.UUID
    registered_in_chongqing: bool
    vehicle_kind: VehicleKind


@dataclasses.dataclass(frozen=True, slots=True)
class Licence:
    """A driver licence; ``licence_no`` is the holder's ID number, ``points`` this cycle's."""

    licence_id: uuid.UUID
    person_id: uuid.UUID
    licence_no: str
    file_no: str
    licence_class: LicenceClass
    first_issued_on: dt.date
    points: int
    status: LicenceStatus


@dataclasses.dataclass(frozen=True, slots=True)
class ViolationCode:
    """A catalogue entry; ``points`` always equals the code's second digit (R-ADJ-3)."""

    code: str
    description_zh: str
    points: int
    fine_min_fen: int
    fine_max_fen: int


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    """One offence record; ``licence_id`` is known once a driver is (on-site or by handling)."""

    violation_id: uuid.UUID
    source_record_id: str
    vehicle_id: uuid.UUID
    licence_id: uuid.UUID | None
    code: str
    occurred_at: dt.datetime
    place: str
    fine_fen: int
    points: int
    source: ViolationSource
    procedure: Procedure
    status: ViolationStatus
    decision_no: str | None
    decision_date: dt.date | None
    paid: bool
