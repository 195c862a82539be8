"""PostgreSQL read model: the queries behind QueryService (reads only; writes are in
``cqquery.adapters.projector``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from cqcommon.db import Conn, uuid_or_nil

from cqquery.adapters.cache import CachedFacts
from cqquery.domain.masking import Person

Kind = Literal["vehicle", "licence"]


@dataclass(frozen=True)
class ViolationRow:
    violation_id: str
    vehicle_id: str
    plate_type: str
    plate_number: str
    licence_id: str | None
    violation_code: str
    description_zh: str
    occurred_at: datetime
    place: str
    fine_fen: int
    points: int
    source: str
    procedure: str
    status: str
    decision_no: str | None
    decision_date: date | None
    disputed: bool


_VIOLATION_COLUMNS = (
    "violation_id::text, vehicle_id::text, plate_type, plate_number, licence_id::text,"
    " violation_code, description_zh, occurred_at, place, fine_fen, points, source, procedure,"
    " status, decision_no, decision_date, disputed"
)


@dataclass(frozen=True)
class VehicleRow:
    vehicle_id: str
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: str
    vehicle_kind: str
    owner: Person | None
    unhandled_count: int
    unpaid_count: int


@dataclass(frozen=True)
class LicenceRow:
    licence_id: str
    person_id: str
    licence_no: str
    file_no: str
    licence_class: str
    first_issued_on: date
    points: int
    status: str
    cycle_start: date | None
    cycle_end: date | None
    holder: Person | None
    unhandled_count: int
    unpaid_count: int


_PERSON = "p.person_id::text, p.name, p.id_number, p.phone"
_VEHICLE_SELECT = (
    "SELECT v.vehicle_id::text, v.plate_type, v.plate_number, v.vin, v.owner_person_id::text,"
    f" v.vehicle_kind, {_PERSON},"
    " (SELECT count(*) FROM violations x WHERE x.vehicle_id = v.vehicle_id"
    "   AND x.status = 'unhandled'),"
    " (SELECT count(*) FROM violations x WHERE x.vehicle_id = v.vehicle_id"
    "   AND x.status = 'handled_unpaid')"
    " FROM vehicles v LEFT JOIN persons p ON p.person_id = v.owner_person_id"
)
_LICENCE_SELECT = (
    "SELECT l.licence_id::text, l.person_id::text, l.licence_no, l.file_no, l.licence_class,"
    " l.first_issued_on, COALESCE(lp.points, l.points), l.status, lp.cycle_start,"
    f" lp.cycle_end, {_PERSON},"
    " (SELECT count(*) FROM violations x WHERE x.licence_id = l.licence_id"
    "   AND x.status = 'unhandled'),"
    " (SELECT count(*) FROM violations x WHERE x.licence_id = l.licence_id"
    "   AND x.status = 'handled_unpaid')"
    " FROM licences l LEFT JOIN persons p ON p.person_id = l.person_id"
    " LEFT JOIN licence_points lp ON lp.licence_id = l.licence_id"
)
# a follow counts while not ended and not expired (R-FOL-5)
_ACTIVE_FOLLOW = "f.active AND (f.expires_at IS NULL OR f.expires_at > now())"


def _person(values: tuple[Any, ...]) -> Person | None:
    person_id, name, id_number, phone = values
    if person_id is None:
        return None
    return Person(person_id, name, id_number, phone)


def _vehicle(row: tuple[Any, ...]) -> VehicleRow:
    vehicle_id, plate_type, plate_number, vin, owner_person_id, vehicle_kind = row[:6]
    return VehicleRow(
        vehicle_id=vehicle_id,
        plate_type=plate_type,
        plate_number=plate_number,
        vin=vin,
        owner_person_id=owner_person_id,
        vehicle_kind=vehicle_kind,
        owner=_person(row[6:10]),
        unhandled_count=int(row[10]),
        unpaid_count=int(row[11]),
    )


def _licence(row: tuple[Any, ...]) -> LicenceRow:
    (
        licence_id,
        person_id,
        licence_no,
        file_no,
        licence_class,
        first_issued_on,
        points,
        status,
        cycle_start,
        cycle_end,
    ) = row[:10]
    return LicenceRow(
        licence_id=licence_id,
        person_id=person_id,
        licence_no=licence_no,
        file_no=file_no,
        licence_class=licence_class,
        first_issued_on=first_issued_on,
        points=int(points),
        status=status,
        cycle_start=cycle_start,
        cycle_end=cycle_end,
        holder=_person(row[10:14]),
        unhandled_count=int(row[14]),
        unpaid_count=int(row[15]),
    )


class PostgresReadModel:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def person_for_user(self, alipay_user_id: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT person_id::text FROM persons WHERE alipay_user_id = %s", (alipay_user_id,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def subject_facts(self, kind: Kind, subject_id: str) -> CachedFacts:
        """Owner and active followers of a vehicle or licence (cacheable: not per caller)."""
        table, owner = (
            ("vehicles", "owner_person_id") if kind == "vehicle" else ("licences", "person_id")
        )
        column = f"{kind}_id"
        cur = await self.conn.execute(
            f"SELECT s.{owner}::text, COALESCE((SELECT json_agg(json_build_array("
            " f.follower_user_id, extract(epoch FROM f.expires_at)))"
            f" FROM follows f WHERE f.{column} = s.{column} AND {_ACTIVE_FOLLOW}"
            " AND f.follower_user_id IS NOT NULL), '[]'::json)"
            f" FROM {table} s WHERE s.{column} = %s",
            (uuid_or_nil(subject_id),),
        )
        row = await cur.fetchone()
        if row is None:
            return CachedFacts(exists=False, owner_person_id=None, followers=())
        followers = tuple((str(u), float(e) if e is not None else None) for u, e in row[1])
        return CachedFacts(exists=True, owner_person_id=row[0], followers=followers)

    async def violation(self, violation_id: str) -> ViolationRow | None:
        cur = await self.conn.execute(
            f"SELECT {_VIOLATION_COLUMNS} FROM violations WHERE violation_id = %s",
            (uuid_or_nil(violation_id),),
        )
        row = await cur.fetchone()
        return ViolationRow(*row) if row else None

    async def person(self, person_id: str) -> Person | None:
        cur = await self.conn.execute(
            f"SELECT {_PERSON} FROM persons p WHERE p.person_id = %s", (uuid_or_nil(person_id),)
        )
        row = await cur.fetchone()
        return _person(row) if row else None

    async def vehicles_of(self, person_id: str) -> list[VehicleRow]:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.owner_person_id = %s ORDER BY v.plate_number",
            (uuid_or_nil(person_id),),
        )
        return [_vehicle(r) for r in await cur.fetchall()]

    async def licences_of(self, person_id: str) -> list[LicenceRow]:
        cur = await self.conn.execute(
            f"{_LICENCE_SELECT} WHERE l.person_id = %s ORDER BY l.first_issued_on",
            (uuid_or_nil(person_id),),
        )
        return [_licence(r) for r in await cur.fetchall()]

    async def followed_vehicles(self, user_id: str) -> list[VehicleRow]:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.vehicle_id IN (SELECT f.vehicle_id FROM follows f"
            f" WHERE f.follower_user_id = %s AND {_ACTIVE_FOLLOW}) ORDER BY v.plate_number",
            (user_id,),
        )
        return [_vehicle(r) for r in await cur.fetchall()]

    async def followed_licences(self, user_id: str) -> list[LicenceRow]:
        cur = await self.conn.execute(
            f"{_LICENCE_SELECT} WHERE l.licence_id IN (SELECT f.licence_id FROM follows f"
            f" WHERE f.follower_user_id = %s AND {_ACTIVE_FOLLOW}) ORDER BY l.licence_no",
            (user_id,),
        )
        return [_licence(r) for r in await cur.fetchall()]

    async def vehicle_by_plate(self, plate_type: str, plate_number: str) -> VehicleRow | None:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.plate_type = %s AND v.plate_number = %s",
            (plate_type, plate_number),
        )
        row = await cur.fetchone()
        return _vehicle(row) if row else None

    async def vehicle(self, vehicle_id: str) -> VehicleRow | None:
        cur = await self.conn.execute(
            f"{_VEHICLE_SELECT} WHERE v.vehicle_id = %s", (uuid_or_nil(vehicle_id),)
        )
        row = await cur.fetchone()
        return _vehicle(row) if row else None

    async def licence_by_no(self, licence_no: str) -> LicenceRow | None:
        cur = await self.conn.execute(f"{_LICENCE_SELECT} WHERE l.licence_no = %s", (licence_no,))
        row = await cur.fetchone()
        return _licence(row) if row else None

    async def violations(
        self,
        kind: Kind,
        subject_id: str,
        *,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ViolationRow]:
        column = "vehicle_id" if kind == "vehicle" else "licence_id"
        clauses = [f"{column} = %s"]
        params: list[object] = [uuid_or_nil(subject_id)]
        if status:
            clauses.append("status = %s")
            params.append(status)
        if after is not None:
            clauses.append("(occurred_at, violation_id) < (%s, %s)")
            params.extend([after[0], uuid_or_nil(after[1])])
        params.append(limit)
        cur = await self.conn.execute(
            f"SELECT {_VIOLATION_COLUMNS} FROM violations WHERE {' AND '.join(clauses)}"
            " ORDER BY occurred_at DESC, violation_id DESC LIMIT %s",
            params,
        )
        return [ViolationRow(*row) for row in await cur.fetchall()]
