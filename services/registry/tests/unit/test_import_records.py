"""The import use case on fakes (no I/O): ids are random per registry and stable within
one, pins are honoured or refused, references go by natural key, a batch is all or
nothing, and only changed records publish. The use case runs with the registry's real
codec and envelope encoder (pure protobuf, no I/O) unless a test swaps in a fake codec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid

import pytest
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.identifiers import PlateType
from cqregistry.domain.events import RecordRegistered
from cqregistry.domain.imports import (
    CodeEntry,
    DriverEntry,
    Entry,
    Kind,
    PersonEntry,
    StoredForm,
    StoredRecord,
    VehicleEntry,
)
from cqregistry.entrypoints.mappers import RECORD_CODEC, envelope_of
from cqregistry.ports import RecordCodec
from cqregistry.service_layer.import_records import import_records
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.registry.v1 import registry_pb2 as reg

CODEC: RecordCodec = RECORD_CODEC
ID_NUMBER = "500103198803159111"
VIN = "LS5A3AJE7KS120345"


Rows = dict[tuple[str, str], tuple[str, str, bytes]]  # (kind, natural key) -> (id, hash, payload)


class FakeMasterRecordRepository:
    """``master_records`` in a dict."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    async def find(self, kind: Kind, natural_key: str) -> StoredRecord | None:
        row = self.rows.get((kind, natural_key))
        return None if row is None else StoredRecord(row[0], row[1])

    async def natural_key_of(self, kind: Kind, record_id: str) -> str | None:
        return next(
            (key for (k, key), row in self.rows.items() if k == kind and row[0] == record_id),
            None,
        )

    async def add(
        self, kind: Kind, natural_key: str, record_id: str, content_hash: str, payload: bytes
    ) -> bool:
        if (kind, natural_key) in self.rows or await self.natural_key_of(kind, record_id):
            return False
        self.rows[(kind, natural_key)] = (record_id, content_hash, payload)
        return True

    async def update(self, kind: Kind, record_id: str, content_hash: str, payload: bytes) -> None:
        key = await self.natural_key_of(kind, record_id)
        assert key is not None
        self.rows[(kind, key)] = (record_id, content_hash, payload)


class FakeUnitOfWork:
    """A fake repository over a copy of ``db`` (the committed rows), the events a commit
    publishes (encoded into envelopes as the Postgres unit of work does) and a
    ``committed`` flag: like the real one, nothing reaches ``db`` or ``published`` unless
    ``commit()`` runs."""

    def __init__(self, db: Rows | None = None) -> None:
        self.db: Rows = {} if db is None else db
        self._repo = FakeMasterRecordRepository(dict(self.db))
        self.committed = False
        self.pending: list[RecordRegistered] = []
        self.events: list[RecordRegistered] = []  # as the use case recorded them
        self.published: list[EventEnvelope] = []  # as the outbox would get them

    @property
    def records(self) -> FakeMasterRecordRepository:
        return self._repo

    def record(self, event: RecordRegistered) -> None:
        self.pending.append(event)

    async def commit(self) -> None:
        self.db.clear()
        self.db.update(self._repo.rows)
        self.events += self.pending
        self.published += map(envelope_of, self.pending)
        self.pending = []
        self.committed = True


def _person(**overrides: object) -> PersonEntry:
    fields: dict[str, object] = {
        "id_number": ID_NUMBER,
        "name": "张伟",
        "phone": "13800000001",
        "alipay_user_id": "2088000000000001",
    }
    return PersonEntry(**(fields | overrides))  # type: ignore[arg-type]


def _vehicle(**overrides: object) -> VehicleEntry:
    fields: dict[str, object] = {
        "vin": VIN,
        "plate_type": PlateType.SMALL_CAR,
        "plate_number": "渝A12345",
        "owner_id_number": ID_NUMBER,
        "vehicle_kind": "personal_small_car",
    }
    return VehicleEntry(**(fields | overrides))  # type: ignore[arg-type]


def _driver(**overrides: object) -> DriverEntry:
    fields: dict[str, object] = {
        "licence_no": ID_NUMBER,
        "holder_id_number": ID_NUMBER,
        "file_no": "500100000001",
        "licence_class": "C1",
        "first_issued_on": dt.date(2010, 6, 18),
        "points": 3,
        "status": "valid",
    }
    return DriverEntry(**(fields | overrides))  # type: ignore[arg-type]


CODE = CodeEntry("1345", "机动车违反禁止标线指示", 3, 10000, 20000)


def _natural_batch() -> list[Entry]:
    return [_person(), _vehicle(), _driver(), CODE]


async def test_same_record_gets_different_ids_in_two_registries_and_the_same_on_reimport() -> None:
    """No id is a function of the record: two fresh registries assign different ids to the
    same person, vehicle and licence; one registry keeps the id it assigned."""
    first, second = FakeUnitOfWork(), FakeUnitOfWork()
    a = await import_records(uow=first, codec=CODEC, entries=_natural_batch())
    b = await import_records(uow=second, codec=CODEC, entries=_natural_batch())
    assert a.ids[3] == b.ids[3] == "1345"  # a code is its own id
    for x, y in zip(a.ids[:3], b.ids[:3], strict=True):
        assert x != y
        assert uuid.UUID(x).version == 4 and uuid.UUID(y).version == 4
    again = FakeUnitOfWork(first.db)
    c = await import_records(uow=again, codec=CODEC, entries=_natural_batch())
    assert c.ids == a.ids
    assert (c.changed, c.unchanged) == (0, 4)
    assert again.committed and again.published == []  # unchanged records publish nothing


async def test_republish_sends_unchanged_records_events_again_and_changes_nothing() -> None:
    """A consumer that joined later (a new service's copy) or a broker that lost its topics
    learns the records again: ``republish`` queues every record's event, same ids and payloads,
    while the registry itself stays as it was."""
    first = FakeUnitOfWork()
    a = await import_records(uow=first, codec=CODEC, entries=_natural_batch())
    again = FakeUnitOfWork(first.db)
    c = await import_records(uow=again, codec=CODEC, entries=_natural_batch(), republish=True)
    assert (c.changed, c.unchanged) == (0, 4) and c.ids == a.ids
    assert again.committed and len(again.published) == 4

    def facts(envelopes: list[EventEnvelope]) -> list[tuple[str, str, bytes]]:
        # new event ids and times, the same events
        return [(e.event_type, e.aggregate_id, e.payload.value) for e in envelopes]

    assert facts(again.published) == facts(first.published)


async def test_events_name_the_assigned_ids_and_resolve_references_by_id_number() -> None:
    uow = FakeUnitOfWork()
    # the vehicle and licence come before their person in the batch: still resolved
    result = await import_records(uow=uow, codec=CODEC, entries=[_vehicle(), _driver(), _person()])
    vehicle_id, licence_id, person_id = result.ids
    assert uow.committed and (result.changed, result.unchanged) == (3, 0)
    payloads = {type(p): p for p in map(unpack, uow.published)}
    person = payloads[reg.PersonRegistered]
    vehicle = payloads[reg.VehicleRegistered]
    driver = payloads[reg.DriverRegistered]
    assert isinstance(person, reg.PersonRegistered)
    assert isinstance(vehicle, reg.VehicleRegistered)
    assert isinstance(driver, reg.DriverRegistered)
    assert (person.person_id, person.id_number) == (person_id, ID_NUMBER)
    assert (vehicle.vehicle_id, vehicle.owner_person_id) == (vehicle_id, person_id)
    assert (driver.licence_id, driver.person_id) == (licence_id, person_id)
    assert {e.aggregate_id for e in uow.published} == {person_id, vehicle_id, licence_id}


async def test_a_changed_record_keeps_its_id_and_publishes_once() -> None:
    uow = FakeUnitOfWork()
    first = await import_records(uow=uow, codec=CODEC, entries=[_person()])
    changed = FakeUnitOfWork(uow.db)
    result = await import_records(uow=changed, codec=CODEC, entries=[_person(phone="13700000000")])
    assert result.ids == first.ids and (result.changed, result.unchanged) == (1, 0)
    (event,) = changed.published
    person = unpack(event)
    assert isinstance(person, reg.PersonRegistered) and person.phone == "13700000000"


async def test_a_pin_is_taken_for_a_new_natural_key_and_kept_on_reimport() -> None:
    pin = str(uuid.uuid4())
    uow = FakeUnitOfWork()
    result = await import_records(uow=uow, codec=CODEC, entries=[_person(pinned_id=pin)])
    assert result.ids == (pin,)
    again = FakeUnitOfWork(uow.db)
    assert (await import_records(uow=again, codec=CODEC, entries=[_person(pinned_id=pin)])).ids == (
        pin,
    )
    assert again.published == []


async def test_a_pin_that_disagrees_is_a_conflict_and_writes_nothing() -> None:
    uow = FakeUnitOfWork()
    (assigned,) = (await import_records(uow=uow, codec=CODEC, entries=[_person()])).ids
    before = dict(uow.db)
    other = FakeUnitOfWork(uow.db)
    with pytest.raises(DomainError) as exc:
        await import_records(uow=other, codec=CODEC, entries=[_person(pinned_id=str(uuid.uuid4()))])
    assert exc.value.code == "REGISTRY_ID_CONFLICT"
    assert not other.committed and other.published == []
    # a pin that is another natural key's id is refused too
    another = FakeUnitOfWork(uow.db)
    with pytest.raises(DomainError) as exc:
        await import_records(
            uow=another,
            codec=CODEC,
            entries=[_person(id_number="500105199207089222", pinned_id=assigned)],
        )
    assert exc.value.code == "REGISTRY_ID_CONFLICT"
    assert not another.committed
    assert uow.db == before


async def test_an_unknown_owner_rejects_the_whole_batch() -> None:
    db: Rows = {}
    uow = FakeUnitOfWork(db)
    stranger = "500105199207089222"
    with pytest.raises(DomainError) as exc:
        await import_records(
            uow=uow, codec=CODEC, entries=[CODE, _vehicle(owner_id_number=stranger)]
        )
    assert exc.value.code == "VALIDATION_FAILED"
    assert exc.value.details["field"] == "owner_id_number"
    assert not uow.committed and uow.published == [] and db == {}  # not even the code


class PhoneBlindCodec:
    """A fake codec whose stored form leaves a person's phone out: a record differing only
    in its phone is then the same record to the registry."""

    def stored_form(self, entry: Entry, record_id: str, person_id: str | None) -> StoredForm:
        if isinstance(entry, PersonEntry):
            entry = dataclasses.replace(entry, phone="")
        return RECORD_CODEC.stored_form(entry, record_id, person_id)


async def test_what_is_stored_and_whether_it_changed_is_the_codecs_stored_form() -> None:
    """The use case stores the codec's bytes and hash and compares hashes only: a change
    the stored form does not carry publishes nothing."""
    codec = PhoneBlindCodec()
    uow = FakeUnitOfWork()
    (person_id,) = (await import_records(uow=uow, codec=codec, entries=[_person()])).ids
    stored_id, digest, payload = uow.db[("person", ID_NUMBER)]
    form = codec.stored_form(_person(), person_id, None)
    assert (stored_id, digest, payload) == (person_id, form.content_hash, form.payload)
    assert "13800000001" not in payload.decode(errors="replace")
    assert uow.events == [RecordRegistered("person", person_id, payload)]
    again = FakeUnitOfWork(uow.db)
    result = await import_records(uow=again, codec=codec, entries=[_person(phone="13700000000")])
    assert (result.changed, result.unchanged) == (0, 1) and again.published == []


async def test_the_stored_form_is_the_published_event_serialised_deterministically() -> None:
    """What master_records holds (and the datagen COPY loader writes) is the deterministic
    serialisation of the event that is published, hashed with SHA-256; the envelope is
    keyed by the record's id and produced by the registry."""
    uow = FakeUnitOfWork()
    result = await import_records(uow=uow, codec=CODEC, entries=_natural_batch())
    assert len(uow.published) == 4
    for envelope in uow.published:
        (key,) = [k for k, row in uow.db.items() if row[0] == envelope.aggregate_id]
        record_id, digest, payload = uow.db[key]
        event = unpack(envelope)
        assert payload == event.SerializeToString(deterministic=True)
        assert digest == hashlib.sha256(payload).hexdigest()
        assert envelope.producer == "registry" and record_id in result.ids
