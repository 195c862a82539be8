"""The follow service's registry consumer (group ``follow.registry``): persons (name, phone
on record, Alipay user id: whether they are on the platform, R-FOL-2), vehicles (plate,
VIN, owner: what a follow request proves, R-FOL-1) and driving licences (number, file
number, holder: R-FOL-8), written into the registry copy inside the inbox transaction, so a
redelivered event is applied once (and applying it twice would change nothing anyway).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from cqcommon.clock import Clock
from cqcommon.db import Conn
from cqcommon.events import TOPIC_REGISTRY_DRIVER, TOPIC_REGISTRY_PERSON, TOPIC_REGISTRY_VEHICLE
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

from cqfollow.adapters.postgres_registry import PostgresRegistryCopy
from cqfollow.entrypoints.mappers import plate_type_text
from cqfollow.ports import RegistryCopy

CopyFactory = Callable[[Conn], RegistryCopy]
Apply = Callable[[RegistryCopy, Message, datetime], Awaitable[None]]


async def on_person(copy: RegistryCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.PersonRegistered)
    await copy.upsert_person(
        person_id=e.person_id,
        name=e.name,
        phone=e.phone or None,
        alipay_user_id=e.alipay_user_id or None,
        now=now,
    )


async def on_vehicle(copy: RegistryCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.VehicleRegistered)
    plate_type = plate_type_text(e.plate_type)
    if not plate_type:
        raise ValueError(f"vehicle {e.vehicle_id} has no plate type")
    await copy.upsert_vehicle(
        vehicle_id=e.vehicle_id,
        plate_type=plate_type,
        plate_number=e.plate_number,
        vin=e.vin,
        owner_person_id=e.owner_person_id,
        now=now,
    )


async def on_driver(copy: RegistryCopy, e: Message, now: datetime) -> None:
    assert isinstance(e, reg.DriverRegistered)
    await copy.upsert_licence(
        licence_id=e.licence_id,
        person_id=e.person_id,
        licence_no=e.licence_no,
        file_no=e.file_no,
        now=now,
    )


REGISTRY_EVENTS: Mapping[type[Message], Apply] = {
    reg.PersonRegistered: on_person,
    reg.VehicleRegistered: on_vehicle,
    reg.DriverRegistered: on_driver,
}


def _handlers(
    table: Mapping[type[Message], Apply], clock: Clock, copy_factory: CopyFactory
) -> dict[str, Handler]:
    def on(apply: Apply) -> Handler:
        async def handle(conn: Conn, event: ReceivedEvent) -> None:
            await apply(copy_factory(conn), event.payload, clock.now())

        return handle

    return {str(kind.DESCRIPTOR.full_name): on(apply) for kind, apply in table.items()}


def registry_handlers(
    ctx: ServiceContext, copy_factory: CopyFactory = PostgresRegistryCopy
) -> Mapping[str, Handler]:
    return _handlers(REGISTRY_EVENTS, ctx.clock, copy_factory)


REGISTRY_CONSUMER = ConsumerSpec(
    group_id="follow.registry",
    topics=[TOPIC_REGISTRY_PERSON, TOPIC_REGISTRY_VEHICLE, TOPIC_REGISTRY_DRIVER],
    handlers=registry_handlers,
)
