"""Keeps adjudication's copy of the registry (vehicles, licences, violation codes) from
registry events. Upserts, so a replayed or re-imported record changes nothing new."""

from __future__ import annotations

from collections.abc import Mapping

from cqcommon.db import Conn
from cqcommon.events import (
    TOPIC_REGISTRY_DRIVER,
    TOPIC_REGISTRY_VEHICLE,
    TOPIC_REGISTRY_VIOLATION_CODE,
)
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.protomap import date_from_proto, plate_type_from_proto
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.registry.v1 import registry_pb2 as reg


async def on_vehicle(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.VehicleRegistered)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"vehicle {e.vehicle_id} has no plate type")
    await conn.execute(
        "INSERT INTO vehicles (vehicle_id, plate_type, plate_number, vin, owner_person_id)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (vehicle_id) DO UPDATE SET"
        " plate_type = EXCLUDED.plate_type, plate_number = EXCLUDED.plate_number,"
        " vin = EXCLUDED.vin, owner_person_id = EXCLUDED.owner_person_id",
        (e.vehicle_id, plate_type.value, e.plate_number, e.vin, e.owner_person_id),
    )


async def on_driver(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.DriverRegistered)
    await conn.execute(
        "INSERT INTO licences (licence_id, person_id, licence_no, file_no, licence_class,"
        " first_issued_on, status) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (licence_id) DO UPDATE SET person_id = EXCLUDED.person_id,"
        " licence_no = EXCLUDED.licence_no, file_no = EXCLUDED.file_no,"
        " licence_class = EXCLUDED.licence_class, first_issued_on = EXCLUDED.first_issued_on,"
        " status = EXCLUDED.status",
        (
            e.licence_id,
            e.person_id,
            e.licence_no,
            e.file_no,
            e.licence_class,
            date_from_proto(e.first_issued_on),
            e.status or "valid",
        ),
    )


async def on_violation_code(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.ViolationCodeRegistered)
    await conn.execute(
        "INSERT INTO violation_codes (code, description_zh, points, fine_min_fen, fine_max_fen)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET"
        " description_zh = EXCLUDED.description_zh, points = EXCLUDED.points,"
        " fine_min_fen = EXCLUDED.fine_min_fen, fine_max_fen = EXCLUDED.fine_max_fen",
        (e.code, e.description_zh, e.points, e.fine_min_fen, e.fine_max_fen),
    )


def handlers(_ctx: ServiceContext) -> Mapping[str, Handler]:
    return {
        reg.VehicleRegistered.DESCRIPTOR.full_name: on_vehicle,
        reg.DriverRegistered.DESCRIPTOR.full_name: on_driver,
        reg.ViolationCodeRegistered.DESCRIPTOR.full_name: on_violation_code,
    }


REGISTRY_CONSUMER = ConsumerSpec(
    group_id="adjudication.registry",
    topics=[TOPIC_REGISTRY_VEHICLE, TOPIC_REGISTRY_DRIVER, TOPIC_REGISTRY_VIOLATION_CODE],
    handlers=handlers,
)
