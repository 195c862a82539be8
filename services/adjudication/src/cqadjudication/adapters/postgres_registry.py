"""PostgreSQL adapter of adjudication's registry copy (persons, vehicles, licences,
violation codes, and each licence's opening points), written by the registry-event
consumer. Upserts by id, so a replayed or re-imported record changes nothing new."""

from __future__ import annotations

from datetime import date, datetime

from cqcommon.clock import SHANGHAI
from cqcommon.db import Conn

from cqadjudication.adapters.postgres_points import PostgresPointsLedger
from cqadjudication.domain.points import opened, reimported


class PostgresRegistryCopy:
    """Works inside the caller's transaction (``conn``: the consumer's inbox transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def upsert_vehicle(
        self,
        *,
        vehicle_id: str,
        plate_type: str,
        plate_number: str,
        vin: str,
        owner_person_id: str,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO vehicles (vehicle_id, plate_type, plate_number, vin, owner_person_id)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (vehicle_id) DO UPDATE SET"
            " plate_type = EXCLUDED.plate_type, plate_number = EXCLUDED.plate_number,"
            " vin = EXCLUDED.vin, owner_person_id = EXCLUDED.owner_person_id",
            (vehicle_id, plate_type, plate_number, vin, owner_person_id),
        )

    async def upsert_licence(
        self,
        *,
        licence_id: str,
        person_id: str,
        licence_no: str,
        file_no: str,
        licence_class: str,
        first_issued_on: date | None,
        status: str,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO licences (licence_id, person_id, licence_no, file_no, licence_class,"
            " first_issued_on, status) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (licence_id) DO UPDATE SET person_id = EXCLUDED.person_id,"
            " licence_no = EXCLUDED.licence_no, file_no = EXCLUDED.file_no,"
            " licence_class = EXCLUDED.licence_class, first_issued_on = EXCLUDED.first_issued_on,"
            " status = EXCLUDED.status",
            (
                licence_id,
                person_id,
                licence_no,
                file_no,
                licence_class,
                first_issued_on,
                status,
            ),
        )

    async def upsert_violation_code(
        self,
        *,
        code: str,
        description_zh: str,
        points: int,
        fine_min_fen: int,
        fine_max_fen: int,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO violation_codes (code, description_zh, points, fine_min_fen,"
            " fine_max_fen) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET"
            " description_zh = EXCLUDED.description_zh, points = EXCLUDED.points,"
            " fine_min_fen = EXCLUDED.fine_min_fen, fine_max_fen = EXCLUDED.fine_max_fen",
            (code, description_zh, points, fine_min_fen, fine_max_fen),
        )

    async def upsert_person(self, *, person_id: str, name: str, id_number: str) -> None:
        await self.conn.execute(
            "INSERT INTO persons (person_id, name, id_number) VALUES (%s, %s, %s)"
            " ON CONFLICT (person_id) DO UPDATE SET name = EXCLUDED.name,"
            " id_number = EXCLUDED.id_number",
            (person_id, name, id_number),
        )

    async def open_ledger(
        self, *, licence_id: str, points: int, first_issued_on: date, now: datetime
    ) -> None:
        ledger = PostgresPointsLedger(self.conn)
        row = await ledger.lock(licence_id)
        if row is None:
            new_row, entry = opened(
                licence_id,
                points,
                first_issued_on=first_issued_on,
                today=now.astimezone(SHANGHAI).date(),
                now=now,
            )
            # Two deliveries racing: the first insert wins, the other is a re-import.
            cur = await self.conn.execute(
                "INSERT INTO points_ledger (licence_id, points, cycle_start, cycle_end,"
                " external_change_at, updated_at) VALUES (%s, %s, %s, %s, NULL, %s)"
                " ON CONFLICT (licence_id) DO NOTHING",
                (licence_id, new_row.points, new_row.cycle_start, new_row.cycle_end, now),
            )
            if cur.rowcount == 1:
                if entry is not None:
                    await self.conn.execute(
                        "INSERT INTO points_entries (licence_id, delta, points_after, channel,"
                        " violation_id, cycle_start, at) VALUES (%s, %s, %s, %s, NULL, %s, %s)",
                        (
                            licence_id,
                            entry.delta,
                            entry.points_after,
                            entry.channel,
                            entry.cycle_start,
                            entry.at,
                        ),
                    )
                return
            row = await ledger.lock(licence_id)
            assert row is not None
        change = reimported(row, points, now=now)
        if change is not None:
            await ledger.apply(*change)
