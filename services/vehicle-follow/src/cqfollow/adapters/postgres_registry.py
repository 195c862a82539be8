"""PostgreSQL adapters of the follow service's registry copy: ``PostgresRegistryReader``
(the ``RegistryReader`` port, inside a use case's transaction) and ``PostgresRegistryCopy``
(the ``RegistryCopy`` port, written by the registry-event consumer inside its inbox
transaction; upserts by id, so a replayed event changes nothing new).

A vehicle is read with its owner in one query (name, phone on record, Alipay user id):
whether the owner is on the platform decides the consent route (R-FOL-2), and the lookup by
plate is the same single statement whether or not the VIN will match (R-FOL-1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn, uuid_or_nil

from cqfollow.domain.follows import LicenceRecord, PersonRecord, VehicleRecord

_VEHICLE_SELECT = (
    "SELECT v.vehicle_id::text, v.plate_type, v.plate_number, v.vin, v.owner_person_id::text,"
    " p.name, p.phone, p.alipay_user_id"
    " FROM vehicles v LEFT JOIN persons p ON p.person_id = v.owner_person_id"
)


def _vehicle(row: tuple[Any, ...]) -> VehicleRecord:
    return VehicleRecord(
        vehicle_id=row[0],
        plate_type=row[1],
        plate_number=row[2],
        vin=row[3],
        owner_person_id=row[4],
        owner_name=row[5],
        owner_phone=row[6],
        owner_user_id=row[7],
    )


class PostgresRegistryReader:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def vehicles_by_plate(self, plate_type: str, plate_number: str) -> list[VehicleRecord]:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.plate_number = %s AND v.plate_type = %s"
            " ORDER BY v.vehicle_id",
            (plate_number, plate_type),
        )
        return [_vehicle(row) for row in await cur.fetchall()]

    async def vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.vehicle_id = %s", (uuid_or_nil(vehicle_id),)
        )
        row = await cur.fetchone()
        return _vehicle(row) if row else None

    async def lock_vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.vehicle_id = %s FOR UPDATE OF v",
            (uuid_or_nil(vehicle_id),),
        )
        row = await cur.fetchone()
        return _vehicle(row) if row else None

    async def licence_by_number(self, licence_no: str) -> LicenceRecord | None:
        cur = await self.conn.execute(
            "SELECT l.licence_id::text, l.person_id::text, l.licence_no, l.file_no,"
            " coalesce(p.name, ''), p.alipay_user_id"
            " FROM licences l LEFT JOIN persons p ON p.person_id = l.person_id"
            " WHERE l.licence_no = %s ORDER BY l.licence_id LIMIT 1",
            (licence_no,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return LicenceRecord(
            licence_id=row[0],
            person_id=row[1],
            licence_no=row[2],
            file_no=row[3],
            holder_name=row[4],
            holder_user_id=row[5],
        )

    async def person(self, person_id: str) -> PersonRecord | None:
        cur = await self.conn.execute(
            "SELECT person_id::text, name, phone, alipay_user_id FROM persons WHERE person_id = %s",
            (uuid_or_nil(person_id),),
        )
        row = await cur.fetchone()
        return PersonRecord(*row) if row else None


class PostgresRegistryCopy:
    """Works inside the caller's transaction (``conn``: the consumer's inbox transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def upsert_person(
        self,
        *,
        person_id: str,
        name: str,
        phone: str | None,
        alipay_user_id: str | None,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO persons (person_id, name, phone, alipay_user_id, updated_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (person_id) DO UPDATE SET"
            " name = EXCLUDED.name, phone = EXCLUDED.phone,"
            " alipay_user_id = EXCLUDED.alipay_user_id, updated_at = EXCLUDED.updated_at",
            (person_id, name, phone or None, alipay_user_id or None, now),
        )

    async def upsert_vehicle(
        self,
        *,
        vehicle_id: str,
        plate_type: str,
        plate_number: str,
        vin: str,
        owner_person_id: str,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO vehicles (vehicle_id, plate_type, plate_number, vin, owner_person_id,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (vehicle_id) DO UPDATE SET"
            " plate_type = EXCLUDED.plate_type, plate_number = EXCLUDED.plate_number,"
            " vin = EXCLUDED.vin, owner_person_id = EXCLUDED.owner_person_id,"
            " updated_at = EXCLUDED.updated_at",
            (vehicle_id, plate_type, plate_number, vin, owner_person_id, now),
        )

    async def upsert_licence(
        self, *, licence_id: str, person_id: str, licence_no: str, file_no: str, now: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO licences (licence_id, person_id, licence_no, file_no, updated_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (licence_id) DO UPDATE SET"
            " person_id = EXCLUDED.person_id, licence_no = EXCLUDED.licence_no,"
            " file_no = EXCLUDED.file_no, updated_at = EXCLUDED.updated_at",
            (licence_id, person_id, licence_no, file_no, now),
        )
