"""Domain <-> protobuf for the registry: import records in, registry events out.

The events keep the shape query and adjudication consume (``PersonRegistered`` etc. with
ids); the import records carry natural keys instead (see ``registry.proto``). The stored
form of a record is its event, serialised deterministically, and its SHA-256, so an
unchanged record is recognised byte for byte and publishes nothing. That is the
:class:`cqregistry.ports.RecordCodec` the use case is given (:data:`RECORD_CODEC`), and
:func:`envelope_of` is the encoder the unit of work wraps each
:class:`~cqregistry.domain.events.RecordRegistered` with for the outbox.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cqcommon.events import new_envelope
from cqcommon.protomap import (
    date_from_proto,
    date_to_proto,
    plate_type_from_proto,
    plate_type_to_proto,
)
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

from cqregistry.domain.events import RecordRegistered
from cqregistry.domain.imports import (
    CodeEntry,
    DriverEntry,
    Entry,
    Kind,
    PersonEntry,
    StoredForm,
    VehicleEntry,
    code_entry,
    driver_entry,
    invalid,
    person_entry,
    vehicle_entry,
)


def entry_from_proto(index: int, record: reg.RegistryRecord) -> Entry:
    """The validated domain entry of request record ``index``; raises naming the bad field."""
    kind = record.WhichOneof("record")
    if kind == "person":
        p = record.person
        return person_entry(
            index,
            id_number=p.id_number,
            name=p.name,
            phone=p.phone,
            alipay_user_id=p.alipay_user_id,
            pinned_id=p.pinned_id,
        )
    if kind == "vehicle":
        v = record.vehicle
        return vehicle_entry(
            index,
            vin=v.vin,
            plate_type=plate_type_from_proto(v.plate_type),
            plate_number=v.plate_number,
            owner_id_number=v.owner_id_number,
            vehicle_kind=v.vehicle_kind,
            pinned_id=v.pinned_id,
        )
    if kind == "driver":
        d = record.driver
        return driver_entry(
            index,
            licence_no=d.licence_no,
            holder_id_number=d.holder_id_number,
            file_no=d.file_no,
            licence_class=d.licence_class,
            first_issued_on=date_from_proto(d.first_issued_on),
            points=d.points,
            status=d.status,
            pinned_id=d.pinned_id,
        )
    if kind == "violation_code":
        c = record.violation_code
        return code_entry(
            index,
            code=c.code,
            description_zh=c.description_zh,
            points=c.points,
            fine_min_fen=c.fine_min_fen,
            fine_max_fen=c.fine_max_fen,
        )
    raise invalid(index, "record")


def entry_to_proto(entry: Entry) -> reg.RegistryRecord:
    """The import record of ``entry`` (for callers of ImportRecords: loaders, tests)."""
    if isinstance(entry, PersonEntry):
        return reg.RegistryRecord(
            person=reg.PersonRecord(
                id_number=entry.id_number,
                name=entry.name,
                phone=entry.phone,
                alipay_user_id=entry.alipay_user_id or "",
                pinned_id=entry.pinned_id or "",
            )
        )
    if isinstance(entry, VehicleEntry):
        return reg.RegistryRecord(
            vehicle=reg.VehicleRecord(
                vin=entry.vin,
                plate_type=plate_type_to_proto(entry.plate_type),
                plate_number=entry.plate_number,
                owner_id_number=entry.owner_id_number,
                vehicle_kind=entry.vehicle_kind,
                pinned_id=entry.pinned_id or "",
            )
        )
    if isinstance(entry, DriverEntry):
        return reg.RegistryRecord(
            driver=reg.DriverRecord(
                licence_no=entry.licence_no,
                holder_id_number=entry.holder_id_number,
                file_no=entry.file_no,
                licence_class=entry.licence_class,
                first_issued_on=date_to_proto(entry.first_issued_on),
                points=entry.points,
                status=entry.status,
                pinned_id=entry.pinned_id or "",
            )
        )
    return reg.RegistryRecord(violation_code=code_event(entry))


def code_event(entry: CodeEntry) -> reg.ViolationCodeRegistered:
    return reg.ViolationCodeRegistered(
        code=entry.code,
        description_zh=entry.description_zh,
        points=entry.points,
        fine_min_fen=entry.fine_min_fen,
        fine_max_fen=entry.fine_max_fen,
    )


def event_of(entry: Entry, record_id: str, person_id: str | None = None) -> Message:
    """The registry event ``entry`` publishes under ``record_id``; ``person_id`` is the id
    of the vehicle's owner or the licence's holder."""
    if isinstance(entry, PersonEntry):
        return reg.PersonRegistered(
            person_id=record_id,
            name=entry.name,
            id_number=entry.id_number,
            phone=entry.phone,
            alipay_user_id=entry.alipay_user_id or "",
        )
    if isinstance(entry, VehicleEntry):
        return reg.VehicleRegistered(
            vehicle_id=record_id,
            plate_type=plate_type_to_proto(entry.plate_type),
            plate_number=entry.plate_number,
            vin=entry.vin,
            owner_person_id=person_id or "",
            vehicle_kind=entry.vehicle_kind,
        )
    if isinstance(entry, DriverEntry):
        return reg.DriverRegistered(
            licence_id=record_id,
            person_id=person_id or "",
            licence_no=entry.licence_no,
            file_no=entry.file_no,
            licence_class=entry.licence_class,
            first_issued_on=date_to_proto(entry.first_issued_on),
            points=entry.points,
            status=entry.status,
        )
    return code_event(entry)


def stored_form(payload: Message) -> StoredForm:
    """A record's event as the registry stores it: deterministic bytes and their SHA-256."""
    raw = payload.SerializeToString(deterministic=True)
    return StoredForm(hashlib.sha256(raw).hexdigest(), raw)


class EventRecordCodec:
    """:class:`cqregistry.ports.RecordCodec`: a record is stored as its registry event."""

    def stored_form(self, entry: Entry, record_id: str, person_id: str | None) -> StoredForm:
        return stored_form(event_of(entry, record_id, person_id))


RECORD_CODEC: Final = EventRecordCodec()

PRODUCER: Final = "registry"

#: The event message each kind's stored payload is.
EVENT_MESSAGES: Final[dict[Kind, type[Message]]] = {
    "person": reg.PersonRegistered,
    "vehicle": reg.VehicleRegistered,
    "driver": reg.DriverRegistered,
    "violation_code": reg.ViolationCodeRegistered,
}


def envelope_of(event: RecordRegistered) -> EventEnvelope:
    """The outbox envelope of ``event`` (keyed by the record's id): its payload is the
    stored event itself, read back from the stored bytes."""
    payload = EVENT_MESSAGES[event.kind].FromString(event.payload)
    return new_envelope(payload, aggregate_id=event.record_id, producer=PRODUCER)
