"""PostgreSQL repository of licences with their points ledger (R-ADJ-5/6, R-X-2), of the
scoring-cycle rollover (R-JOB-5) and of the R-X-2 alerts. Works inside the caller's
transaction.

A licence without a ledger row (its DriverRegistered not applied yet) reads as no
licence: points and decisions need the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from cqcommon.clock import SHANGHAI
from cqcommon.db import Conn, uuid_or_nil

from cqadjudication.domain.alerts import PointsBuyingAlert
from cqadjudication.domain.eligibility import CycleUsage, HandlerLicence
from cqadjudication.domain.points import LedgerRow, PointsEntry, RolloverCandidate

_LICENCE = (
    "SELECT l.licence_id::text, l.person_id::text, l.licence_class, l.status, p.points,"
    " p.cycle_start, p.cycle_end, p.external_change_at"
    " FROM licences l JOIN points_ledger p USING (licence_id)"
)


def _licence(row: tuple[Any, ...] | None) -> HandlerLicence | None:
    if row is None:
        return None
    return HandlerLicence(
        licence_id=row[0],
        person_id=row[1],
        licence_class=row[2],
        status=row[3],
        points=row[4],
        cycle_start=row[5],
        cycle_end=row[6],
        external_change_at=row[7],
    )


class PostgresPointsLedger:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def licence_of_person(self, person_id: str) -> HandlerLicence | None:
        cur = await self.conn.execute(
            f"{_LICENCE} WHERE l.person_id = %s"
            " ORDER BY (l.status = 'valid') DESC, l.first_issued_on DESC LIMIT 1",
            (uuid_or_nil(person_id),),
        )
        return _licence(await cur.fetchone())

    async def licence_by_no(self, licence_no: str) -> HandlerLicence | None:
        cur = await self.conn.execute(f"{_LICENCE} WHERE l.licence_no = %s", (licence_no,))
        return _licence(await cur.fetchone())

    async def licence(self, licence_id: str) -> HandlerLicence | None:
        cur = await self.conn.execute(
            f"{_LICENCE} WHERE l.licence_id = %s", (uuid_or_nil(licence_id),)
        )
        return _licence(await cur.fetchone())

    async def lock(self, licence_id: str) -> LedgerRow | None:
        cur = await self.conn.execute(
            "SELECT licence_id::text, points, cycle_start, cycle_end, external_change_at"
            " FROM points_ledger WHERE licence_id = %s FOR UPDATE",
            (uuid_or_nil(licence_id),),
        )
        row = await cur.fetchone()
        return LedgerRow(*row) if row else None

    async def lock_licence(self, licence_id: str) -> tuple[LedgerRow, HandlerLicence] | None:
        # FOR UPDATE OF p: a statement that waited for the row lock reads the ledger row as
        # the holder left it (READ COMMITTED re-reads the locked row); the licence columns
        # are as of the statement's start, as a separate read just before would have been.
        cur = await self.conn.execute(
            f"{_LICENCE} WHERE l.licence_id = %s FOR UPDATE OF p", (uuid_or_nil(licence_id),)
        )
        licence = _licence(await cur.fetchone())
        if licence is None:
            return None
        ledger = LedgerRow(
            licence.licence_id,
            licence.points,
            licence.cycle_start,
            licence.cycle_end,
            licence.external_change_at,
        )
        return ledger, licence

    async def apply(self, row: LedgerRow, entry: PointsEntry) -> None:
        await self.conn.execute(
            "UPDATE points_ledger SET points = %s, cycle_start = %s, cycle_end = %s,"
            " external_change_at = %s, updated_at = %s WHERE licence_id = %s",
            (
                row.points,
                row.cycle_start,
                row.cycle_end,
                row.external_change_at,
                entry.at,
                row.licence_id,
            ),
        )
        await self.conn.execute(
            "INSERT INTO points_entries (licence_id, delta, points_after, channel, violation_id,"
            " cycle_start, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                entry.licence_id,
                entry.delta,
                entry.points_after,
                entry.channel,
                entry.violation_id,
                entry.cycle_start,
                entry.at,
            ),
        )

    async def usage(
        self, licence: HandlerLicence, vehicle_ids: Sequence[str]
    ) -> dict[str, CycleUsage]:
        # Entries booked within the licence's cycle (Asia/Shanghai calendar days).
        start = datetime.combine(licence.cycle_start, time(), SHANGHAI)
        end = datetime.combine(licence.cycle_end + timedelta(days=1), time(), SHANGHAI)
        cur = await self.conn.execute(
            "SELECT DISTINCT v.vehicle_id::text FROM points_entries e"
            " JOIN violations v USING (violation_id) JOIN vehicles vh USING (vehicle_id)"
            " WHERE e.licence_id = %s AND e.delta > 0 AND e.at >= %s AND e.at < %s"
            " AND vh.owner_person_id <> %s",
            (licence.licence_id, start, end, licence.person_id),
        )
        taken = frozenset(row[0] for row in await cur.fetchall())
        ids = list({uuid_or_nil(vid) for vid in vehicle_ids})
        cur = await self.conn.execute(
            "SELECT DISTINCT v.vehicle_id::text, e.licence_id::text FROM points_entries e"
            " JOIN violations v USING (violation_id)"
            " WHERE v.vehicle_id = ANY(%s::uuid[]) AND e.delta > 0 AND e.at >= %s AND e.at < %s",
            (ids, start, end),
        )
        on_vehicle: dict[str, set[str]] = {}
        for vehicle_id, licence_id in await cur.fetchall():
            on_vehicle.setdefault(vehicle_id, set()).add(licence_id)
        return {vid: CycleUsage(taken, frozenset(on_vehicle.get(vid, ()))) for vid in vehicle_ids}


class PostgresRollover:
    """The ledgers whose scoring cycle has ended (R-JOB-5), walked by licence id."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def lock_due(
        self, *, today: date, after: str | None, limit: int
    ) -> list[RolloverCandidate]:
        # points_ledger_cycle_end_idx finds the few ledgers due tonight (one anniversary
        # day's worth) without walking every licence; FOR UPDATE OF p: handlings and the
        # counter lock the same row before booking points
        cur = await self.conn.execute(
            "SELECT p.licence_id::text, p.points, p.cycle_start, p.cycle_end,"
            " p.external_change_at, l.person_id::text, l.first_issued_on"
            " FROM points_ledger p JOIN licences l ON l.licence_id = p.licence_id"
            " WHERE p.cycle_end < %s AND p.licence_id > %s"
            " ORDER BY p.licence_id LIMIT %s FOR UPDATE OF p",
            (today, uuid_or_nil(after or ""), limit),
        )
        return [
            RolloverCandidate(LedgerRow(*row[:5]), person_id=row[5], first_issued_on=row[6])
            for row in await cur.fetchall()
        ]

    async def unpaid_since(self, licence_ids: Sequence[str]) -> dict[str, date]:
        if not licence_ids:
            return {}
        # a fine counts for the licence its points went on; a 0-point decision (no entry)
        # for the licence the record names
        cur = await self.conn.execute(
            "SELECT licence_id::text, min(decision_date) FROM ("
            " SELECT e.licence_id, v.decision_date FROM points_entries e"
            "  JOIN violations v ON v.violation_id = e.violation_id"
            "  WHERE e.licence_id = ANY(%s::uuid[]) AND v.status = 'handled_unpaid'"
            " UNION ALL"
            " SELECT v.licence_id, v.decision_date FROM violations v"
            "  WHERE v.licence_id = ANY(%s::uuid[]) AND v.status = 'handled_unpaid'"
            "  AND NOT EXISTS (SELECT 1 FROM points_entries e"
            "   WHERE e.violation_id = v.violation_id)"
            ") unpaid GROUP BY licence_id",
            (list(licence_ids), list(licence_ids)),
        )
        return {row[0]: row[1] for row in await cur.fetchall()}

    async def roll(self, row: LedgerRow, entries: Sequence[PointsEntry], *, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE points_ledger SET points = %s, cycle_start = %s, cycle_end = %s,"
            " updated_at = %s WHERE licence_id = %s",
            (row.points, row.cycle_start, row.cycle_end, now, row.licence_id),
        )
        async with self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO points_entries (licence_id, delta, points_after, channel,"
                " violation_id, cycle_start, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.licence_id,
                        e.delta,
                        e.points_after,
                        e.channel,
                        e.violation_id,
                        e.cycle_start,
                        e.at,
                    )
                    for e in entries
                ],
            )


_ALERT = (
    "alert_id::text, kind, licence_id::text, vehicle_id::text, cycle_start, count,"
    " violation_id::text, handler_person_id::text, raised_at"
)


class PostgresAlertRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add(self, alert: PointsBuyingAlert) -> None:
        a = alert
        await self.conn.execute(
            "INSERT INTO points_buying_alerts (alert_id, kind, licence_id, vehicle_id,"
            " cycle_start, count, violation_id, handler_person_id, raised_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT points_buying_alerts_case_unique DO NOTHING",
            (
                a.alert_id,
                a.kind,
                a.licence_id,
                a.vehicle_id,
                a.cycle_start,
                a.count,
                a.violation_id,
                a.handler_person_id,
                a.raised_at,
            ),
        )

    async def page(
        self, *, limit: int, after: tuple[datetime, str] | None
    ) -> list[PointsBuyingAlert]:
        if after is None:
            cur = await self.conn.execute(
                f"SELECT {_ALERT} FROM points_buying_alerts"
                " ORDER BY raised_at DESC, alert_id DESC LIMIT %s",
                (limit,),
            )
        else:
            cur = await self.conn.execute(
                f"SELECT {_ALERT} FROM points_buying_alerts WHERE (raised_at, alert_id) < (%s, %s)"
                " ORDER BY raised_at DESC, alert_id DESC LIMIT %s",
                (after[0], after[1], limit),
            )
        return [PointsBuyingAlert(*row) for row in await cur.fetchall()]
