"""PostgreSQL read model: the queries behind QueryService."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from cqcommon.db import Conn, uuid_or_nil

from cqquery.domain.access import SubjectFacts


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


class PostgresReadModel:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def person_for_user(self, alipay_user_id: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT person_id::text FROM persons WHERE alipay_user_id = %s", (alipay_user_id,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def subject_facts(
        self, kind: Literal["vehicle", "licence"], subject_id: str, *, caller_user_id: str
    ) -> SubjectFacts:
        if kind == "vehicle":
            sql = (
                "SELECT owner_person_id::text, EXISTS (SELECT 1 FROM follows f WHERE f.active"
                " AND f.vehicle_id = v.vehicle_id AND f.follower_user_id = %s)"
                " FROM vehicles v WHERE vehicle_id = %s"
            )
        else:
            sql = (
                "SELECT person_id::text, EXISTS (SELECT 1 FROM follows f WHERE f.active"
                " AND f.licence_id = l.licence_id AND f.follower_user_id = %s)"
                " FROM licences l WHERE licence_id = %s"
            )
        cur = await self.conn.execute(sql, (caller_user_id, uuid_or_nil(subject_id)))
        row = await cur.fetchone()
        if row is None:
            return SubjectFacts(exists=False, owner_person_id=None, followed_by_caller=False)
        return SubjectFacts(exists=True, owner_person_id=row[0], followed_by_caller=bool(row[1]))

    async def violations(
        self,
        kind: Literal["vehicle", "licence"],
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
