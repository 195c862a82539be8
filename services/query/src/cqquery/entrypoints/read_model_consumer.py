"""Builds the read model from registry, adjudication, payment and follow events.

Every handler is an upsert or a guarded update, so applying an event twice changes
nothing (the inbox already drops redeliveries; this also covers re-imports).
"""

from __future__ import annotations

from collections.abc import Mapping

from cqcommon.db import Conn
from cqcommon.events import (
    TOPIC_FOLLOW,
    TOPIC_PAYMENT,
    TOPIC_POINTS,
    TOPIC_REGISTRY_DRIVER,
    TOPIC_REGISTRY_PERSON,
    TOPIC_REGISTRY_VEHICLE,
    TOPIC_VIOLATION,
)
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.protomap import (
    PROCEDURE_NAMES,
    SOURCE_NAMES,
    STATUS_NAMES,
    date_from_proto,
    plate_type_from_proto,
    timestamp_from_proto,
)
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.registry.v1 import registry_pb2 as reg


async def on_person(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.PersonRegistered)
    await conn.execute(
        "INSERT INTO persons (person_id, name, id_number, phone, alipay_user_id)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (person_id) DO UPDATE SET"
        " name = EXCLUDED.name, id_number = EXCLUDED.id_number, phone = EXCLUDED.phone,"
        " alipay_user_id = EXCLUDED.alipay_user_id",
        (e.person_id, e.name, e.id_number, e.phone, e.alipay_user_id or None),
    )


async def on_vehicle(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.VehicleRegistered)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"vehicle {e.vehicle_id} has no plate type")
    await conn.execute(
        "INSERT INTO vehicles (vehicle_id, plate_type, plate_number, vin, owner_person_id,"
        " vehicle_kind) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (vehicle_id) DO UPDATE SET"
        " plate_type = EXCLUDED.plate_type, plate_number = EXCLUDED.plate_number,"
        " vin = EXCLUDED.vin, owner_person_id = EXCLUDED.owner_person_id,"
        " vehicle_kind = EXCLUDED.vehicle_kind",
        (e.vehicle_id, plate_type.value, e.plate_number, e.vin, e.owner_person_id, e.vehicle_kind),
    )


async def on_driver(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, reg.DriverRegistered)
    await conn.execute(
        "INSERT INTO licences (licence_id, person_id, licence_no, file_no, licence_class,"
        " first_issued_on, points, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (licence_id) DO UPDATE SET person_id = EXCLUDED.person_id,"
        " licence_no = EXCLUDED.licence_no, file_no = EXCLUDED.file_no,"
        " licence_class = EXCLUDED.licence_class, first_issued_on = EXCLUDED.first_issued_on,"
        " points = EXCLUDED.points, status = EXCLUDED.status",
        (
            e.licence_id,
            e.person_id,
            e.licence_no,
            e.file_no,
            e.licence_class,
            date_from_proto(e.first_issued_on),
            e.points,
            e.status or "valid",
        ),
    )


async def on_violation_recorded(conn: Conn, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, adj.ViolationRecorded)
    plate_type = plate_type_from_proto(e.plate_type)
    if plate_type is None:
        raise ValueError(f"violation {e.violation_id} has no plate type")
    await conn.execute(
        "INSERT INTO violations (violation_id, vehicle_id, plate_type, plate_number, licence_id,"
        " violation_code, description_zh, occurred_at, place, fine_fen, points, source,"
        " procedure, status, decision_no, decision_date)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (violation_id) DO NOTHING",
        (
            e.violation_id,
            e.vehicle_id,
            plate_type.value,
            e.plate_number,
            e.licence_id or None,
            e.violation_code,
            e.description_zh,
            timestamp_from_proto(e.occurred_at),
            e.place,
            e.fine_fen,
            e.points,
            SOURCE_NAMES[e.source],
            PROCEDURE_NAMES[e.procedure],
            STATUS_NAMES[e.status],
            e.decision_no or None,
            date_from_proto(e.decision_date),
        ),
    )


def handlers(_ctx: ServiceContext) -> Mapping[str, Handler]:
    return {
        reg.PersonRegistered.DESCRIPTOR.full_name: on_person,
        reg.VehicleRegistered.DESCRIPTOR.full_name: on_vehicle,
        reg.DriverRegistered.DESCRIPTOR.full_name: on_driver,
        adj.ViolationRecorded.DESCRIPTOR.full_name: on_violation_recorded,
    }


READ_MODEL_CONSUMER = ConsumerSpec(
    group_id="query.read-model",
    topics=[
        TOPIC_REGISTRY_PERSON,
        TOPIC_REGISTRY_VEHICLE,
        TOPIC_REGISTRY_DRIVER,
        TOPIC_VIOLATION,
        TOPIC_POINTS,
        TOPIC_PAYMENT,
        TOPIC_FOLLOW,
    ],
    handlers=handlers,
)
