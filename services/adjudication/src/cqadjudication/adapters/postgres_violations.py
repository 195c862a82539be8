"""PostgreSQL repository of violations (and the registry-copy lookups a recording needs).

Works inside the caller's transaction; the unit of work (``adapters.unit_of_work``) turns
a constraint the database enforces (a decision number used twice) into its stable error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cqcommon.db import Conn, uuid_or_nil
from cqcommon.identifiers import PlateType

from cqadjudication.domain.handlings import Decision
from cqadjudication.domain.violations import Violation, ViolationReport

_COLUMNS = (
    "violation_id::text, source_system, source_record_id, vehicle_id::text, v.plate_type,"
    " v.plate_number, licence_id::text, violation_code, description_zh, occurred_at, place,"
    " fine_fen, points, source, procedure, status, decision_no, decision_date, disputed"
)


def _violation(row: tuple[Any, ...]) -> Violation:
    return Violation(
        violation_id=row[0],
        source_system=row[1],
        source_record_id=row[2],
        vehicle_id=row[3],
        plate_type=PlateType(row[4]),
        plate_number=row[5],
        licence_id=row[6],
        violation_code=row[7],
        description_zh=row[8],
        occurred_at=row[9],
        place=row[10],
        fine_fen=row[11],
        points=row[12],
        source=row[13],
        procedure=row[14],
        status=row[15],
        decision_no=row[16],
        decision_date=row[17],
        disputed=row[18],
    )


class PostgresViolationRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def find_vehicle(self, plate_type: str, plate_number: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT vehicle_id::text FROM vehicles WHERE plate_type = %s AND plate_number = %s",
            (plate_type, plate_number),
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def find_licence(self, licence_no: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT licence_id::text FROM licences WHERE licence_no = %s", (licence_no,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def code_description(self, code: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT description_zh FROM violation_codes WHERE code = %s", (code,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def add(
        self,
        violation_id: str,
        report: ViolationReport,
        vehicle_id: str,
        licence_id: str | None,
        description_zh: str,
    ) -> bool:
        cur = await self.conn.execute(
            "INSERT INTO violations (violation_id, source_system, source_record_id, request_hash,"
            " vehicle_id, licence_id, violation_code, description_zh, occurred_at, place,"
            " fine_fen, points, source, procedure, status, decision_no, decision_date)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (source_system, source_record_id) DO NOTHING",
            (
                violation_id,
                report.source_system,
                report.source_record_id,
                report.fingerprint(),
                vehicle_id,
                licence_id,
                report.violation_code,
                description_zh,
                report.occurred_at,
                report.place,
                report.fine_fen,
                report.points,
                report.source,
                report.procedure,
                report.initial_status,
                report.decision_no,
                report.decision_date,
            ),
        )
        return cur.rowcount == 1

    async def by_source(self, source_system: str, source_record_id: str) -> tuple[Violation, str]:
        cur = await self.conn.execute(
            f"SELECT {_COLUMNS}, request_hash FROM violations JOIN vehicles v USING (vehicle_id)"
            " WHERE source_system = %s AND source_record_id = %s",
            (source_system, source_record_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise LookupError((source_system, source_record_id))
        return _violation(row), row[19]

    async def get(self, violation_id: str) -> Violation | None:
        cur = await self.conn.execute(
            f"SELECT {_COLUMNS} FROM violations JOIN vehicles v USING (vehicle_id)"
            " WHERE violation_id = %s",
            (uuid_or_nil(violation_id),),
        )
        row = await cur.fetchone()
        return _violation(row) if row else None

    async def get_many(self, violation_ids: Sequence[str]) -> list[Violation]:
        # A malformed id becomes the nil UUID, which matches no row (never a cast error).
        ids = list({uuid_or_nil(vid) for vid in violation_ids})
        if not ids:
            return []
        cur = await self.conn.execute(
            f"SELECT {_COLUMNS} FROM violations JOIN vehicles v USING (vehicle_id)"
            " WHERE violation_id = ANY(%s::uuid[])",
            (ids,),
        )
        return [_violation(row) for row in await cur.fetchall()]

    async def lock(self, violation_id: str) -> Violation | None:
        cur = await self.conn.execute(
            f"SELECT {_COLUMNS} FROM violations JOIN vehicles v USING (vehicle_id)"
            " WHERE violation_id = %s FOR UPDATE OF violations",
            (uuid_or_nil(violation_id),),
        )
        row = await cur.fetchone()
        return _violation(row) if row else None

    async def owners(self, vehicle_ids: Sequence[str]) -> dict[str, str]:
        ids = list({uuid_or_nil(vid) for vid in vehicle_ids})
        if not ids:
            return {}
        cur = await self.conn.execute(
            "SELECT vehicle_id::text, owner_person_id::text FROM vehicles"
            " WHERE vehicle_id = ANY(%s::uuid[])",
            (ids,),
        )
        return {row[0]: row[1] for row in await cur.fetchall()}

    async def _update_returning(self, assignments: str, params: tuple[Any, ...]) -> Violation:
        """``UPDATE violations SET <assignments> WHERE violation_id = <last param>`` and the
        changed violation as ``get`` reads it, in one statement (a round trip less than
        updating, then reading back)."""
        cur = await self.conn.execute(
            f"WITH changed AS (UPDATE violations SET {assignments} WHERE violation_id = %s"
            f" RETURNING *) SELECT {_COLUMNS} FROM changed JOIN vehicles v USING (vehicle_id)",
            params,
        )
        row = await cur.fetchone()
        assert row is not None  # locked by the caller's transaction
        return _violation(row)

    async def decide(self, violation_id: str, decision: Decision) -> Violation:
        return await self._update_returning(
            "status = 'handled_unpaid', decision_no = %s, decision_date = %s",
            (decision.decision_no, decision.decision_date, uuid_or_nil(violation_id)),
        )

    async def set_disputed(self, violation_id: str, disputed: bool) -> Violation:
        return await self._update_returning("disputed = %s", (disputed, uuid_or_nil(violation_id)))

    async def next_decision_serial(self) -> int:
        cur = await self.conn.execute("SELECT nextval('decision_serial')")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def decision_no_taken(self, decision_no: str) -> bool:
        cur = await self.conn.execute(
            "SELECT 1 FROM violations WHERE decision_no = %s", (decision_no,)
        )
        return await cur.fetchone() is not None
