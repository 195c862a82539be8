"""PostgreSQL repository of decision notices (R-ADJ-7, R-JOB-3): the stored PDFs, the
decisions still without one (walked by decision number), and the facts a notice prints.
Works inside the caller's transaction.

The party of a decision is whoever it was issued to: the handler of its submitted handling
(online or at a counter), else the licence its points went on, else the licence the record
names, else the vehicle's owner; a party the persons copy does not have yet (its
PersonRegistered not applied) leaves the decision out, so no notice without a name is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cqcommon.db import Conn

from cqadjudication.domain.notices import NoticeFacts
from cqadjudication.ports import StoredNotice

_FACTS = (
    "SELECT v.decision_no, v.decision_date, v.violation_id::text, v.procedure, p.name,"
    " p.id_number, vh.plate_type, vh.plate_number, v.violation_code, v.description_zh,"
    " v.occurred_at, v.place, v.fine_fen, v.points"
    " FROM violations v JOIN vehicles vh ON vh.vehicle_id = v.vehicle_id"
    " LEFT JOIN LATERAL (SELECT h.handler_licence_id FROM handlings h"
    "  WHERE h.violation_id = v.violation_id AND h.state = 'submitted') h ON true"
    " LEFT JOIN LATERAL (SELECT e.licence_id FROM points_entries e"
    "  WHERE e.violation_id = v.violation_id) e ON true"
    " LEFT JOIN licences l ON l.licence_id = coalesce(h.handler_licence_id, e.licence_id,"
    "  v.licence_id)"
    " JOIN persons p ON p.person_id = coalesce(l.person_id, vh.owner_person_id)"
    " WHERE v.decision_no = ANY(%s::text[])"
)


def _facts(row: tuple[Any, ...]) -> NoticeFacts:
    return NoticeFacts(
        decision_no=row[0],
        decision_date=row[1],
        violation_id=row[2],
        procedure=row[3],
        party_name=row[4],
        party_id_number=row[5],
        plate_type=row[6],
        plate_number=row[7],
        violation_code=row[8],
        description_zh=row[9],
        occurred_at=row[10],
        place=row[11],
        fine_fen=row[12],
        points=row[13],
        # a decision number starts with the 6-digit division code of the authority
        authority_code=row[0][:6],
    )


class PostgresNoticeRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def get(self, decision_no: str) -> StoredNotice | None:
        cur = await self.conn.execute(
            "SELECT decision_no, violation_id::text, content, generated_at"
            " FROM decision_notices WHERE decision_no = %s",
            (decision_no,),
        )
        row = await cur.fetchone()
        return StoredNotice(row[0], row[1], bytes(row[2]), row[3]) if row else None

    async def is_decided(self, decision_no: str) -> bool:
        cur = await self.conn.execute(
            "SELECT 1 FROM violations WHERE decision_no = %s", (decision_no,)
        )
        return await cur.fetchone() is not None

    async def due(self, *, after: str | None, limit: int) -> list[str]:
        # the unique index on violations.decision_no gives the order and the keyset
        cur = await self.conn.execute(
            "SELECT v.decision_no FROM violations v"
            " WHERE v.decision_no IS NOT NULL AND v.decision_no > %s"
            " AND NOT EXISTS (SELECT 1 FROM decision_notices n"
            "  WHERE n.decision_no = v.decision_no)"
            " ORDER BY v.decision_no LIMIT %s",
            (after or "", limit),
        )
        return [row[0] for row in await cur.fetchall()]

    async def facts(self, decision_nos: Sequence[str]) -> dict[str, NoticeFacts]:
        if not decision_nos:
            return {}
        cur = await self.conn.execute(_FACTS, (list(decision_nos),))
        return {row[0]: _facts(row) for row in await cur.fetchall()}

    async def add(self, notice: StoredNotice) -> StoredNotice:
        await self.conn.execute(
            "INSERT INTO decision_notices (decision_no, violation_id, content, generated_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (notice.decision_no, notice.violation_id, notice.content, notice.generated_at),
        )
        stored = await self.get(notice.decision_no)
        assert stored is not None  # inserted above, or by whoever came first
        return stored
