"""What an import brings and how the registry gives it an id.

Records arrive keyed by their **natural keys**, never by id:

* a person by ID number;
* a driver licence by ``licence_no`` (which equals the holder's ID number);
* a vehicle by **VIN**, not by plate: a plate is an assignment that changes (re-plating
  after a transfer to another city, a personalised plate, a plate given back and later
  issued to another car), while the VIN is stamped on the vehicle for its life. Keying
  by VIN keeps one vehicle id (and with it follows and violation history) across a
  re-plating, which then arrives as an ordinary change of the record;
* a violation code by its code (which is also its id).

The first time the registry sees a natural key it assigns a **random** id (uuid4) and
keeps it; afterwards it finds the record by that natural key. So no id that leaves the
system is a function of an ID number, phone, name, plate or VIN: an id plus a masked ID
number gives nothing back. The only other source of ids is a *pin* (the sandbox roster's
literal ids, which other teams' demo scripts use): it is taken when the natural key is
new and must agree with the id already assigned otherwise (:func:`resolve_id`).

Validation here is pure; a record names the field that is wrong and its position in the
batch, and one bad record rejects the whole batch (R-ERR-1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Final, Literal

from cqcommon.errors import REGISTRY_ID_CONFLICT, VALIDATION_FAILED, DomainError
from cqcommon.identifiers import (
    PlateType,
    normalise_vin,
    parse_file_no,
    parse_id_number,
    parse_licence_class,
    parse_plate,
    parse_violation_code,
    points_of_code,
)
from cqcommon.text import check_text

from cqregistry.domain.model import Licence, LicenceStatus, Person, Vehicle, ViolationCode

Kind = Literal["person", "vehicle", "driver", "violation_code"]
MAX_BATCH: Final = 5000
LICENCE_STATES: Final = frozenset({"valid", "suspended", "revoked"})


@dataclasses.dataclass(frozen=True, slots=True)
class PersonEntry:
    """A natural person as imported; natural key: the ID number."""

    kind: ClassVar[Kind] = "person"
    id_number: str
    name: str
    phone: str
    alipay_user_id: str | None
    pinned_id: str | None = None

    @property
    def natural_key(self) -> str:
        return self.id_number


@dataclasses.dataclass(frozen=True, slots=True)
class VehicleEntry:
    """A vehicle as imported; natural key: the VIN. Its owner is named by ID number."""

    kind: ClassVar[Kind] = "vehicle"
    vin: str
    plate_type: PlateType
    plate_number: str
    owner_id_number: str
    vehicle_kind: str
    pinned_id: str | None = None

    @property
    def natural_key(self) -> str:
        return self.vin


@dataclasses.dataclass(frozen=True, slots=True)
class DriverEntry:
    """A driver licence as imported; natural key: ``licence_no`` (= the holder's ID number)."""

    kind: ClassVar[Kind] = "driver"
    licence_no: str
    holder_id_number: str
    file_no: str
    licence_class: str
    first_issued_on: dt.date
    points: int
    status: str
    pinned_id: str | None = None

    @property
    def natural_key(self) -> str:
        return self.licence_no


@dataclasses.dataclass(frozen=True, slots=True)
class CodeEntry:
    """A violation-code catalogue entry; natural key and id: the code."""

    kind: ClassVar[Kind] = "violation_code"
    code: str
    description_zh: str
    points: int
    fine_min_fen: int
    fine_max_fen: int
    pinned_id: None = None

    @property
    def natural_key(self) -> str:
        return self.code


Entry = PersonEntry | VehicleEntry | DriverEntry | CodeEntry

#: Import order inside a batch: a vehicle or licence may name a person that comes later
#: in the same batch, so people are settled first. Response ids keep request order.
KIND_ORDER: Final[dict[Kind, int]] = {"violation_code": 0, "person": 1, "vehicle": 2, "driver": 3}


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRecord:
    """What the registry holds for a natural key: the id it assigned and its content hash."""

    record_id: str
    content_hash: str


@dataclasses.dataclass(frozen=True, slots=True)
class StoredForm:
    """A record as the registry stores it (``master_records.content_hash``/``payload``):
    the bytes of its registry event and their hash. Equal hashes mean an unchanged record,
    which publishes nothing; how the bytes are made is the codec's business
    (:class:`cqregistry.ports.RecordCodec`)."""

    content_hash: str
    payload: bytes


def invalid(index: int, field: str, **more: Any) -> DomainError:
    """The batch is rejected because record ``index`` has a bad ``field``."""
    return DomainError(VALIDATION_FAILED, details={"record": index, "field": field, **more})


def _text(index: int, field: str, value: str, *, required: bool = True, limit: int = 200) -> str:
    check_text(value, field=field)
    text = value.strip()
    if (required and not text) or len(text) > limit:
        raise invalid(index, field)
    return text


def _pin(index: int, raw: str) -> str | None:
    """A pinned id in canonical form (``None`` when absent)."""
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise invalid(index, "pinned_id") from None


def person_entry(
    index: int, *, id_number: str, name: str, phone: str, alipay_user_id: str, pinned_id: str
) -> PersonEntry:
    """A validated person record."""
    return PersonEntry(
        id_number=parse_id_number(id_number),
        name=_text(index, "name", name, limit=64),
        phone=_text(index, "phone", phone, required=False, limit=32),
        alipay_user_id=_text(index, "alipay_user_id", alipay_user_id, required=False, limit=64)
        or None,
        pinned_id=_pin(index, pinned_id),
    )


def vehicle_entry(
    index: int,
    *,
    vin: str,
    plate_type: PlateType | None,
    plate_number: str,
    owner_id_number: str,
    vehicle_kind: str,
    pinned_id: str,
) -> VehicleEntry:
    """A validated vehicle record (its owner is resolved by the use case)."""
    if plate_type is None:
        raise invalid(index, "plate_type")
    ptype, plate = parse_plate(plate_type, plate_number)
    return VehicleEntry(
        vin=normalise_vin(vin),
        plate_type=ptype,
        plate_number=plate,
        owner_id_number=parse_id_number(owner_id_number),
        vehicle_kind=_text(index, "vehicle_kind", vehicle_kind, limit=64),
        pinned_id=_pin(index, pinned_id),
    )


def driver_entry(
    index: int,
    *,
    licence_no: str,
    holder_id_number: str,
    file_no: str,
    licence_class: str,
    first_issued_on: dt.date | None,
    points: int,
    status: str,
    pinned_id: str,
) -> DriverEntry:
    """A validated licence record; ``licence_no`` must be the holder's ID number."""
    number = parse_id_number(licence_no)
    holder = parse_id_number(holder_id_number)
    if number != holder:
        raise invalid(index, "holder_id_number", reason="licence_no is the holder's ID number")
    if first_issued_on is None:
        raise invalid(index, "first_issued_on")
    classes = _text(index, "licence_class", licence_class, limit=32)
    for part in classes.split("/"):
        parse_licence_class(part)
    if not 0 <= points <= 99:
        raise invalid(index, "points")
    if status not in LICENCE_STATES:
        raise invalid(index, "status")
    return DriverEntry(
        licence_no=number,
        holder_id_number=holder,
        file_no=parse_file_no(file_no),
        licence_class=classes,
        first_issued_on=first_issued_on,
        points=points,
        status=status,
        pinned_id=_pin(index, pinned_id),
    )


def code_entry(
    index: int,
    *,
    code: str,
    description_zh: str,
    points: int,
    fine_min_fen: int,
    fine_max_fen: int,
) -> CodeEntry:
    """A validated catalogue entry: points are the code's second digit (R-ADJ-3)."""
    parsed = parse_violation_code(code)
    if points != points_of_code(parsed):
        raise invalid(index, "points")
    if not 0 < fine_min_fen <= fine_max_fen:
        raise invalid(index, "fine_min_fen")
    return CodeEntry(
        code=parsed,
        description_zh=_text(index, "description_zh", description_zh),
        points=points,
        fine_min_fen=fine_min_fen,
        fine_max_fen=fine_max_fen,
    )


def new_record_id() -> str:
    """A fresh random id: nothing about the record can be computed from it."""
    return str(uuid.uuid4())


def resolve_id(
    entry: Entry,
    *,
    index: int,
    stored: StoredRecord | None,
    pin_holder: str | None,
    new_id: Callable[[], str] = new_record_id,
) -> str:
    """The id of ``entry``: the one already assigned to its natural key, else its pin,
    else a new random one. A pin must agree with the id already assigned to the natural
    key, and must not be another natural key's id (``pin_holder`` is the natural key that
    currently has the pinned id, if any); either disagreement is ``REGISTRY_ID_CONFLICT``.
    """
    if isinstance(entry, CodeEntry):
        return entry.code
    pin = entry.pinned_id
    if pin is not None:
        if stored is not None and stored.record_id != pin:
            raise DomainError(
                REGISTRY_ID_CONFLICT,
                details={"record": index, "kind": entry.kind, "pinned_id": pin},
            )
        if pin_holder is not None and pin_holder != entry.natural_key:
            raise DomainError(
                REGISTRY_ID_CONFLICT,
                details={"record": index, "kind": entry.kind, "pinned_id": pin},
            )
    if stored is not None:
        return stored.record_id
    return pin if pin is not None else new_id()


# -- from the registry's record types (the roster, dev tooling's synthetic data) ---------
#: The registry protocol's licence states; an "over_points" licence is held by the police
#: until the driver re-qualifies, which the protocol calls suspended.
LICENCE_STATE: Final[dict[LicenceStatus, str]] = {
    LicenceStatus.NORMAL: "valid",
    LicenceStatus.OVER_POINTS: "suspended",
    LicenceStatus.SUSPENDED: "suspended",
}


def person_to_entry(p: Person, *, pin: bool) -> PersonEntry:
    """The import entry of ``p``; ``pin`` keeps its id (pinned records only)."""
    return PersonEntry(
        id_number=p.id_number,
        name=p.name,
        phone=p.phone,
        alipay_user_id=p.alipay_user_id,
        pinned_id=str(p.person_id) if pin else None,
    )


def vehicle_to_entry(v: Vehicle, owner_id_number: str, *, pin: bool) -> VehicleEntry:
    """The import entry of ``v``, naming its owner by ID number."""
    return VehicleEntry(
        vin=v.vin,
        plate_type=v.plate_type,
        plate_number=v.plate_number,
        owner_id_number=owner_id_number,
        vehicle_kind=v.vehicle_kind.value,
        pinned_id=str(v.vehicle_id) if pin else None,
    )


def licence_to_entry(lic: Licence, *, pin: bool) -> DriverEntry:
    """The import entry of ``lic``, naming its holder by ID number (= its licence number)."""
    return DriverEntry(
        licence_no=lic.licence_no,
        holder_id_number=lic.licence_no,
        file_no=lic.file_no,
        licence_class=lic.licence_class.value,
        first_issued_on=lic.first_issued_on,
        points=lic.points,
        status=LICENCE_STATE[lic.status],
        pinned_id=str(lic.licence_id) if pin else None,
    )


def code_to_entry(c: ViolationCode) -> CodeEntry:
    """The import entry of a catalogue code."""
    return CodeEntry(
        code=c.code,
        description_zh=c.description_zh,
        points=c.points,
        fine_min_fen=c.fine_min_fen,
        fine_max_fen=c.fine_max_fen,
    )
