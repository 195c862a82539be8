"""Keeps adjudication's copy of the registry (persons, vehicles, licences with their
opening points, violation codes) from registry events: decodes each event and hands it to
the registry-copy adapter, inside the inbox transaction (so a redelivered event is applied
once). A driver's points open the licence's points ledger; a later import with other
points is booked as a change by another channel (R-ADJ-6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from cqcommon.clock import Clock
from cqcommon.db import Conn
from cqcommon.events import (
    TOPIC_REGISTRY_DRIVER,
    TOPIC_REGISTRY_PERSON,
    TOPIC_REGISTRY_VEHICLE,
    TOPIC_REGISTRY_VIOLATION_CODE,
)
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.protomap import date_from_proto, plate_type_from_proto
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.registry.v1 import registry_pb2 as reg

from cqadjudication.adapters.postgres_registry import PostgresRegistryCopy
from cqadjudication.ports import RegistryCopy

RegistryCopyFactory = Callable[[Conn], RegistryCopy]


async def on_person(copy: RegistryCopy, event: ReceivedEvent, now: datetime) -> None:
    e = event.payload
    assert isinstance(e, reg.PersonRegistered)
    await copy.upsert_person(person_id=e.person_id, name=e.name, id_number=e.id_number)


async def on_vehicle(copy: RegistryCopy, event: ReceivedEvent, now: datetime) -> None:
    e = event.payload
    assert isinstance(e, reg.VehicleRegistered)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"vehicle {e.vehicle_id} has no plate type")
    await copy.upsert_vehicle(
        vehicle_id=e.vehicle_id,
        plate_type=plate_type.value,
        plate_number=e.plate_number,
        vin=e.vin,
        owner_person_id=e.owner_person_id,
    )


async def on_driver(copy: RegistryCopy, event: ReceivedEvent, now: datetime) -> None:
    e = event.payload
    assert isinstance(e, reg.DriverRegistered)
    first_issued_on = date_from_proto(e.first_issued_on)
    await copy.upsert_licence(
        licence_id=e.licence_id,
        person_id=e.person_id,
        licence_no=e.licence_no,
        file_no=e.file_no,
        licence_class=e.licence_class,
        first_issued_on=first_issued_on,
        status=e.status or "valid",
    )
    if first_issued_on is not None:  # the licences copy refuses one without it anyway
        await copy.open_ledger(
            licence_id=e.licence_id, points=e.points, first_issued_on=first_issued_on, now=now
        )


async def on_violation_code(copy: RegistryCopy, event: ReceivedEvent, now: datetime) -> None:
    e = event.payload
    assert isinstance(e, reg.ViolationCodeRegistered)
    await copy.upsert_violation_code(
        code=e.code,
        description_zh=e.description_zh,
        points=e.points,
        fine_min_fen=e.fine_min_fen,
        fine_max_fen=e.fine_max_fen,
    )


def handlers(
    ctx: ServiceContext, registry_copy: RegistryCopyFactory = PostgresRegistryCopy
) -> Mapping[str, Handler]:
    clock: Clock = ctx.clock

    def on(apply: Callable[[RegistryCopy, ReceivedEvent, datetime], Awaitable[None]]) -> Handler:
        async def handle(conn: Conn, event: ReceivedEvent) -> None:
            await apply(registry_copy(conn), event, clock.now())

        return handle

    return {
        reg.PersonRegistered.DESCRIPTOR.full_name: on(on_person),
        reg.VehicleRegistered.DESCRIPTOR.full_name: on(on_vehicle),
        reg.DriverRegistered.DESCRIPTOR.full_name: on(on_driver),
        reg.ViolationCodeRegistered.DESCRIPTOR.full_name: on(on_violation_code),
    }


REGISTRY_CONSUMER = ConsumerSpec(
    group_id="adjudication.registry",
    topics=[
        TOPIC_REGISTRY_PERSON,
        TOPIC_REGISTRY_VEHICLE,
        TOPIC_REGISTRY_DRIVER,
        TOPIC_REGISTRY_VIOLATION_CODE,
    ],
    handlers=handlers,
)
