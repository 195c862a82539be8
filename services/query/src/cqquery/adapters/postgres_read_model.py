"""PostgreSQL read model: the queries behind QueryService (reads only; writes are in
``cqquery.adapters.projector``). All of the query service's read SQL is here; the use
cases get a :class:`PostgresReadModel` per use from :class:`PostgresReaders`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any

from cqcommon.db import NIL_UUID, Conn, Database, uuid_or_nil

from cqquery.domain.cursor import Position
from cqquery.domain.masking import Person
from cqquery.domain.model import (
    AccessFacts,
    Kind,
    LicenceRow,
    SubjectAccess,
    VehicleRow,
    ViolationAccess,
    ViolationRow,
)

__all__ = [
    "Kind",
    "LicenceRow",
    "PostgresReadModel",
    "PostgresReaders",
    "VehicleRow",
    "ViolationRow",
]

_VIOLATION_COLUMNS = (
    "violation_id::text, vehicle_id::text, plate_type, plate_number, licence_id::text,"
    " violation_code, description_zh, occurred_at, place, fine_fen, points, source, procedure,"
    " status, decision_no, decision_date, disputed"
)


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
# the detail's one statement: the asked id LEFT JOINed to its violation, the violation's
# vehicle and licence, and whether the caller follows either at the use case's "now"
_V_WIDTH = len(fields(ViolationRow))
_V_COLUMNS = ", ".join("v." + c.strip() for c in _VIOLATION_COLUMNS.split(","))
_CALLER_FOLLOWS = (
    "EXISTS (SELECT 1 FROM follows f WHERE f.{column} = {subject}.{column}"
    " AND f.follower_user_id = %(user)s AND f.active"
    " AND (f.expires_at IS NULL OR f.expires_at > %(now)s))"
)
_VIOLATION_ACCESS = (
    f"SELECT {_V_COLUMNS},"
    " ve.vehicle_id IS NOT NULL, ve.owner_person_id::text,"
    f" {_CALLER_FOLLOWS.format(column='vehicle_id', subject='ve')},"
    " l.licence_id IS NOT NULL, l.person_id::text,"
    f" {_CALLER_FOLLOWS.format(column='licence_id', subject='l')}"
    " FROM (VALUES (%(id)s::uuid)) AS asked (violation_id)"
    " LEFT JOIN violations v ON v.violation_id = asked.violation_id"
    " LEFT JOIN vehicles ve ON ve.vehicle_id = v.vehicle_id"
    " LEFT JOIN licences l ON l.licence_id = v.licence_id"
)


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

    async def access_facts(self, kind: Kind, subject_id: str) -> AccessFacts:
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
            return AccessFacts(exists=False, owner_person_id=None, followers=())
        followers = tuple((str(u), float(e) if e is not None else None) for u, e in row[1])
        return AccessFacts(exists=True, owner_person_id=row[0], followers=followers)

    async def violation_access(
        self, violation_id: str, *, user_id: str, now: datetime
    ) -> ViolationAccess:
        """The violation with its subjects' owners and the caller's follows, in one
        statement that returns exactly one row whether or not the violation exists (the
        joins start from the asked id, not from the violation), so a missing id and a
        foreign one cost the same (R-Q-1)."""
        cur = await self.conn.execute(
            _VIOLATION_ACCESS, {"id": uuid_or_nil(violation_id), "user": user_id, "now": now}
        )
        row = await cur.fetchone()
        if row is None:  # cannot happen (the VALUES row is always there)
            raise RuntimeError("violation access statement returned no row")
        width = _V_WIDTH
        found = ViolationRow(*row[:width]) if row[0] is not None else None
        vehicle_exists, owner, vehicle_followed, licence_exists, holder, licence_followed = row[
            width:
        ]
        vehicle_id = found.vehicle_id if found else NIL_UUID
        licence_id = found.licence_id if found and found.licence_id else NIL_UUID
        return ViolationAccess(
            found,
            SubjectAccess(
                "vehicle", vehicle_id, bool(vehicle_exists), owner, bool(vehicle_followed)
            ),
            SubjectAccess(
                "licence", licence_id, bool(licence_exists), holder, bool(licence_followed)
            ),
        )

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
        after: Position | None,
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
            params.extend([after.occurred_at, uuid_or_nil(after.violation_id)])
        params.append(limit)
        cur = await self.conn.execute(
            f"SELECT {_VIOLATION_COLUMNS} FROM violations WHERE {' AND '.join(clauses)}"
            " ORDER BY occurred_at DESC, violation_id DESC LIMIT %s",
            params,
        )
        return [ViolationRow(*row) for row in await cur.fetchall()]

    async def vehicles_access(
        self, vehicle_ids: Sequence[str], *, user_id: str, now: datetime
    ) -> list[SubjectAccess]:
        """Owner and the caller's follow of each existing vehicle asked about (R-Q-1)."""
        cur = await self.conn.execute(
            "SELECT ve.vehicle_id::text, ve.owner_person_id::text,"
            f" {_CALLER_FOLLOWS.format(column='vehicle_id', subject='ve')}"
            " FROM vehicles ve WHERE ve.vehicle_id = ANY(%(ids)s::uuid[])",
            {"ids": [uuid_or_nil(v) for v in vehicle_ids], "user": user_id, "now": now},
        )
        return [
            SubjectAccess("vehicle", vehicle_id, True, owner, bool(followed))
            for vehicle_id, owner, followed in await cur.fetchall()
        ]


class PostgresReaders:
    """A :class:`PostgresReadModel` on one pooled connection per use (``ports.ReadModelReaders``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[PostgresReadModel]:
        # reads only, each on its own: no BEGIN/COMMIT round trips (Database.reading)
        async with self.db.reading() as conn:
            yield PostgresReadModel(conn)
