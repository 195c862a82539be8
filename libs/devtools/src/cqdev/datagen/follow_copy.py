"""Bulk snapshot loader of the follow service's registry copy (``persons``, ``vehicles``,
``licences``) with PostgreSQL COPY.

This is the documented bulk path behind ``python -m cqdev generate`` (dev tooling, not part
of the follow service): like restoring a database snapshot it writes the copy directly
instead of letting the service's registry consumer (group ``follow.registry``) build it
from registry events, and it **publishes nothing**.

The rows are what that consumer would write, by construction: the loader is given the
registry events themselves (the ones the registry stores and would publish for the
records, :meth:`cqdev.datagen.registry_copy.RegistryRow.event`) and puts each through the
consumer's own handler (:data:`cqfollow.entrypoints.consumers.REGISTRY_EVENTS`), into a
registry copy that keeps the row instead of upserting it. So the phone on record and the
Alipay user id (on the platform or not, R-FOL-2), the plate type's text and the owner are
exactly as the running service would have them, and a later redelivery of the same event
changes nothing but ``updated_at``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cqfollow.entrypoints.consumers import REGISTRY_EVENTS
from google.protobuf.message import Message

from cqdev.datagen import bulkcopy as bc

SCHEMA = "follow"


class PersonRow(NamedTuple):
    person_id: uuid.UUID
    name: str
    phone: str | None
    alipay_user_id: str | None
    updated_at: dt.datetime


class VehicleRow(NamedTuple):
    vehicle_id: uuid.UUID
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: uuid.UUID
    updated_at: dt.datetime


class LicenceRow(NamedTuple):
    licence_id: uuid.UUID
    person_id: uuid.UUID
    licence_no: str
    file_no: str
    updated_at: dt.datetime


@dataclass(frozen=True)
class FollowSnapshot:
    """The registry events to load (``PersonRegistered``, ``VehicleRegistered``,
    ``DriverRegistered``), each an iterable consumed once (constant memory); ``now`` is the
    ``updated_at`` of every row, as the consumer's clock would give it."""

    persons: Iterable[Message]
    vehicles: Iterable[Message]
    licences: Iterable[Message]
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class RowKeepingCopy:
    """The follow service's ``RegistryCopy`` port that keeps the row an upsert would write
    (:attr:`row`) instead of writing it; ids become ``UUID`` for the binary COPY (the
    columns are ``uuid``, which the PostgreSQL adapter's text ids are cast to)."""

    def __init__(self) -> None:
        self.row: tuple[Any, ...] | None = None

    async def upsert_person(
        self,
        *,
        person_id: str,
        name: str,
        phone: str | None,
        alipay_user_id: str | None,
        now: dt.datetime,
    ) -> None:
        self.row = PersonRow(uuid.UUID(person_id), name, phone, alipay_user_id, now)

    async def upsert_vehicle(
        self,
        *,
        vehicle_id: str,
        plate_type: str,
        plate_number: str,
        vin: str,
        owner_person_id: str,
        now: dt.datetime,
    ) -> None:
        owner = uuid.UUID(owner_person_id)
        self.row = VehicleRow(uuid.UUID(vehicle_id), plate_type, plate_number, vin, owner, now)

    async def upsert_licence(
        self, *, licence_id: str, person_id: str, licence_no: str, file_no: str, now: dt.datetime
    ) -> None:
        self.row = LicenceRow(uuid.UUID(licence_id), uuid.UUID(person_id), licence_no, file_no, now)


async def as_consumed(event: Message, now: dt.datetime) -> tuple[Any, ...]:
    """The row the follow service's registry consumer writes for ``event``."""
    copy = RowKeepingCopy()
    await REGISTRY_EVENTS[type(event)](copy, event, now)
    if copy.row is None:
        raise ValueError(f"the follow registry consumer wrote nothing for {type(event).__name__}")
    return copy.row


async def _consumed(events: Iterable[Message], now: dt.datetime) -> AsyncIterator[tuple[Any, ...]]:
    for event in events:
        yield await as_consumed(event, now)


_PERSONS = bc.CopyTable(
    "persons", PersonRow._fields, ("uuid", "text", "text", "text", "timestamptz")
)
_VEHICLES = bc.CopyTable(
    "vehicles", VehicleRow._fields, ("uuid", "text", "text", "text", "uuid", "timestamptz")
)
_LICENCES = bc.CopyTable(
    "licences", LicenceRow._fields, ("uuid", "uuid", "text", "text", "timestamptz")
)


async def copy_snapshot(
    conninfo: str,
    snapshot: FollowSnapshot,
    progress: bc.Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> bc.SnapshotCounts:
    """Load ``snapshot`` into the follow service's registry copy in one transaction.

    Every row must be new. If the snapshot's first vehicle is already present (by plate,
    as the consumer would have written it) the snapshot is taken as loaded (a re-run of
    the same ``generate``) and nothing is written. Publishes no events.
    """
    report = progress or bc.no_progress
    first_event, vehicles = bc.peek(snapshot.vehicles)
    first = None if first_event is None else await as_consumed(first_event, snapshot.now)

    async def load(conn: bc.Conn, counts: bc.SnapshotCounts) -> None:
        now = snapshot.now
        tables = (
            (_PERSONS, snapshot.persons),
            (_VEHICLES, vehicles),
            (_LICENCES, snapshot.licences),
        )
        for table, events in tables:
            await table.copy(conn, counts, _consumed(events, now), schema=schema, report=report)

    return await bc.load_snapshot(
        conninfo, schema, lambda conn: bc.vehicle_loaded_before(conn, first), load
    )
