"""Writes events into the read model (PostgreSQL): one method per fact.

Every write is an upsert or a guarded update, so applying the same event twice changes
nothing, and no write needs the row it refers to to exist yet: facts that can overtake
their subject (a payment before its violation, points before their licence) go into
their own tables, and ``refresh_violation`` recomputes what a violation shows from all
of them (see migration 0002). Each method returns the cache subjects it touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from cqcommon.db import Conn

from cqquery.adapters.cache import Subject


@dataclass(frozen=True)
class PersonFacts:
    person_id: str
    name: str
    id_number: str
    phone: str
    alipay_user_id: str | None


@dataclass(frozen=True)
class VehicleFacts:
    vehicle_id: str
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: str
    vehicle_kind: str


@dataclass(frozen=True)
class LicenceFacts:
    licence_id: str
    person_id: str
    licence_no: str
    file_no: str
    licence_class: str
    first_issued_on: date | None
    points: int
    status: str


@dataclass(frozen=True)
class RecordedViolation:
    violation_id: str
    vehicle_id: str
    plate_type: str
    plate_number: str
    licence_id: str | None
    violation_code: str
    description_zh: str
    occurred_at: datetime | None
    place: str
    fine_fen: int
    points: int
    source: str
    procedure: str
    status: str
    decision_no: str | None
    decision_date: date | None


@dataclass(frozen=True)
class Handling:
    violation_id: str
    handling_id: str
    decision_no: str
    decision_date: date | None
    handler_person_id: str | None
    handler_licence_id: str | None
    fine_fen: int
    points: int
    channel: str


@dataclass(frozen=True)
class Follow:
    follow_id: str
    follower_person_id: str | None
    follower_user_id: str | None
    target: str
    vehicle_id: str | None
    licence_id: str | None


class ReadModelProjector:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # -- registry -------------------------------------------------------------------------
    async def person(self, p: PersonFacts) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO persons (person_id, name, id_number, phone, alipay_user_id)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (person_id) DO UPDATE SET"
            " name = EXCLUDED.name, id_number = EXCLUDED.id_number, phone = EXCLUDED.phone,"
            " alipay_user_id = EXCLUDED.alipay_user_id",
            (p.person_id, p.name, p.id_number, p.phone, p.alipay_user_id),
        )
        return []  # person details are only shown uncached (/me, lookups)

    async def vehicle(self, v: VehicleFacts) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO vehicles (vehicle_id, plate_type, plate_number, vin, owner_person_id,"
            " vehicle_kind) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (vehicle_id) DO UPDATE"
            " SET plate_type = EXCLUDED.plate_type, plate_number = EXCLUDED.plate_number,"
            " vin = EXCLUDED.vin, owner_person_id = EXCLUDED.owner_person_id,"
            " vehicle_kind = EXCLUDED.vehicle_kind",
            (v.vehicle_id, v.plate_type, v.plate_number, v.vin, v.owner_person_id, v.vehicle_kind),
        )
        return [("vehicle", v.vehicle_id)]

    async def licence(self, lic: LicenceFacts) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO licences (licence_id, person_id, licence_no, file_no, licence_class,"
            " first_issued_on, points, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (licence_id) DO UPDATE SET person_id = EXCLUDED.person_id,"
            " licence_no = EXCLUDED.licence_no, file_no = EXCLUDED.file_no,"
            " licence_class = EXCLUDED.licence_class,"
            " first_issued_on = EXCLUDED.first_issued_on, points = EXCLUDED.points,"
            " status = EXCLUDED.status",
            (
                lic.licence_id,
                lic.person_id,
                lic.licence_no,
                lic.file_no,
                lic.licence_class,
                lic.first_issued_on,
                lic.points,
                lic.status,
            ),
        )
        return [("licence", lic.licence_id)]

    # -- adjudication ---------------------------------------------------------------------
    async def violations_recorded(self, vs: Sequence[RecordedViolation]) -> list[list[Subject]]:
        """Several recordings at once (one round trip for the rows, one for the refresh);
        the subjects each one touched, in their order. A violation recorded twice keeps
        its first recording, as one at a time."""
        if not vs:
            return []
        # one pipeline: the rows and the refresh in one round trip (the refresh's fetch
        # syncs it; both statements are ours, nothing here reads a rowcount)
        async with self.conn.pipeline(), self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO violations (violation_id, vehicle_id, plate_type, plate_number,"
                " licence_id, violation_code, description_zh, occurred_at, place, fine_fen,"
                " points, source, procedure, status, decision_no, decision_date,"
                " recorded_status, recorded_licence_id, recorded_decision_no,"
                " recorded_decision_date, recorded_fine_fen, recorded_points)"
                " VALUES (%(violation_id)s, %(vehicle_id)s, %(plate_type)s, %(plate_number)s,"
                " %(licence_id)s, %(violation_code)s, %(description_zh)s, %(occurred_at)s,"
                " %(place)s, %(fine_fen)s, %(points)s, %(source)s, %(procedure)s, %(status)s,"
                " %(decision_no)s, %(decision_date)s, %(status)s, %(licence_id)s,"
                " %(decision_no)s, %(decision_date)s, %(fine_fen)s, %(points)s)"
                " ON CONFLICT (violation_id) DO NOTHING",
                [
                    {
                        "violation_id": v.violation_id,
                        "vehicle_id": v.vehicle_id,
                        "plate_type": v.plate_type,
                        "plate_number": v.plate_number,
                        "licence_id": v.licence_id,
                        "violation_code": v.violation_code,
                        "description_zh": v.description_zh,
                        "occurred_at": v.occurred_at,
                        "place": v.place,
                        "fine_fen": v.fine_fen,
                        "points": v.points,
                        "source": v.source,
                        "procedure": v.procedure,
                        "status": v.status,
                        "decision_no": v.decision_no,
                        "decision_date": v.decision_date,
                    }
                    for v in vs
                ],
            )
            # facts about these violations may have arrived first
            touched = await self.refresh_violations([v.violation_id for v in vs])
        return [touched[v.violation_id] for v in vs]

    async def violation_handled(self, h: Handling) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO violation_handlings (violation_id, handling_id, decision_no,"
            " decision_date, handler_person_id, handler_licence_id, fine_fen, points, channel)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (violation_id) DO NOTHING",
            (
                h.violation_id,
                h.handling_id,
                h.decision_no,
                h.decision_date,
                h.handler_person_id,
                h.handler_licence_id,
                h.fine_fen,
                h.points,
                h.channel,
            ),
        )
        return await self.refresh_violation(h.violation_id)

    async def dispute(self, violation_id: str, *, disputed: bool, as_of: datetime) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO violation_disputes (violation_id, disputed, as_of) VALUES (%s, %s, %s)"
            " ON CONFLICT (violation_id) DO UPDATE SET disputed = EXCLUDED.disputed,"
            " as_of = EXCLUDED.as_of WHERE violation_disputes.as_of <= EXCLUDED.as_of",
            (violation_id, disputed, as_of),
        )
        return await self.refresh_violation(violation_id)

    async def points_changed(
        self,
        licence_id: str,
        *,
        points: int,
        cycle_start: date | None,
        cycle_end: date | None,
        channel: str,
        as_of: datetime,
    ) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO licence_points (licence_id, points, cycle_start, cycle_end, channel,"
            " as_of) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (licence_id) DO UPDATE SET"
            " points = EXCLUDED.points, cycle_start = EXCLUDED.cycle_start,"
            " cycle_end = EXCLUDED.cycle_end, channel = EXCLUDED.channel, as_of = EXCLUDED.as_of"
            " WHERE licence_points.as_of <= EXCLUDED.as_of",
            (licence_id, points, cycle_start, cycle_end, channel, as_of),
        )
        return [("licence", licence_id)]

    # -- payment --------------------------------------------------------------------------
    async def fine_paid(
        self,
        *,
        payment_id: str,
        violation_id: str,
        decision_no: str,
        amount_fen: int,
        paid_at: datetime | None,
        channel: str,
    ) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO violation_payments (payment_id, violation_id, decision_no, amount_fen,"
            " paid_at, channel) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (payment_id) DO"
            " UPDATE SET amount_fen = EXCLUDED.amount_fen, paid_at = EXCLUDED.paid_at,"
            " channel = EXCLUDED.channel",
            (payment_id, violation_id, decision_no, amount_fen, paid_at, channel),
        )
        return await self.refresh_violation(violation_id)

    async def payment_refunded(
        self,
        *,
        payment_id: str,
        refund_id: str,
        violation_id: str,
        decision_no: str,
        refunded_at: datetime | None,
    ) -> list[Subject]:
        # the refund may overtake its payment: the payment row is created without paid_at
        await self.conn.execute(
            "INSERT INTO violation_payments (payment_id, violation_id, decision_no, refund_id,"
            " refunded_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (payment_id) DO UPDATE SET"
            " refund_id = EXCLUDED.refund_id, refunded_at = EXCLUDED.refunded_at",
            (payment_id, violation_id, decision_no, refund_id, refunded_at),
        )
        return await self.refresh_violation(violation_id)

    async def refresh_violation(self, violation_id: str) -> list[Subject]:
        """Recompute what a violation shows from everything known about it."""
        return (await self.refresh_violations([violation_id]))[violation_id]

    async def refresh_violations(self, violation_ids: Sequence[str]) -> dict[str, list[Subject]]:
        """Recompute what each violation shows from everything known about it, in one
        statement; the subjects each one touched (a violation not recorded yet touches
        only itself)."""
        cur = await self.conn.execute(
            """
            WITH facts AS (
                SELECT k.id, h.decision_no, h.decision_date, h.handler_licence_id,
                       h.fine_fen AS h_fine, h.points AS h_points,
                       d.disputed,
                       (SELECT max(p.paid_at) FROM violation_payments p
                         WHERE p.violation_id = k.id AND p.paid_at IS NOT NULL
                           AND p.refunded_at IS NULL) AS paid_at
                  FROM (SELECT DISTINCT unnest(%(ids)s::uuid[]) AS id) k
                  LEFT JOIN violation_handlings h ON h.violation_id = k.id
                  LEFT JOIN violation_disputes d ON d.violation_id = k.id
            )
            UPDATE violations v SET
                status = CASE
                    WHEN f.paid_at IS NOT NULL OR v.recorded_status = 'paid' THEN 'paid'
                    WHEN f.decision_no IS NOT NULL OR v.recorded_decision_no IS NOT NULL
                        THEN 'handled_unpaid'
                    ELSE v.recorded_status END,
                decision_no = COALESCE(f.decision_no, v.recorded_decision_no),
                decision_date = COALESCE(f.decision_date, v.recorded_decision_date),
                licence_id = COALESCE(f.handler_licence_id, v.recorded_licence_id),
                fine_fen = COALESCE(f.h_fine, v.recorded_fine_fen),
                points = COALESCE(f.h_points, v.recorded_points),
                disputed = COALESCE(f.disputed, false),
                paid_at = f.paid_at
              FROM facts f
             WHERE v.violation_id = f.id
            RETURNING v.violation_id::text, v.vehicle_id::text, v.licence_id::text,
                      v.recorded_licence_id::text
            """,
            {"ids": list(violation_ids)},
        )
        touched: dict[str, list[Subject]] = {
            violation_id: [("violation", violation_id)] for violation_id in violation_ids
        }
        # the rows name a violation in PostgreSQL's spelling; the events, in theirs
        spellings: dict[str, list[str]] = {}
        for violation_id in touched:
            spellings.setdefault(str(uuid.UUID(violation_id)), []).append(violation_id)
        for row_id, vehicle_id, licence_id, recorded_licence_id in await cur.fetchall():
            for violation_id in spellings.get(row_id, ()):
                subjects = touched[violation_id]
                subjects.append(("vehicle", vehicle_id))
                for lid in {licence_id, recorded_licence_id} - {None}:
                    subjects.append(("licence", lid))
        return touched

    # -- follow ---------------------------------------------------------------------------
    async def follow_started(
        self, f: Follow, *, consent: str, started_at: datetime | None, expires_at: datetime | None
    ) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO follows (follow_id, follower_person_id, follower_user_id, target,"
            " vehicle_id, licence_id, consent, started_at, expires_at, active)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true)"
            " ON CONFLICT (follow_id) DO UPDATE SET"
            " follower_person_id = EXCLUDED.follower_person_id,"
            " follower_user_id = EXCLUDED.follower_user_id, target = EXCLUDED.target,"
            " vehicle_id = EXCLUDED.vehicle_id, licence_id = EXCLUDED.licence_id,"
            " consent = EXCLUDED.consent, started_at = EXCLUDED.started_at,"
            " expires_at = EXCLUDED.expires_at, active = follows.ended_at IS NULL",
            (
                f.follow_id,
                f.follower_person_id,
                f.follower_user_id,
                f.target,
                f.vehicle_id,
                f.licence_id,
                consent,
                started_at,
                expires_at,
            ),
        )
        return _follow_subjects(f)

    async def follow_ended(
        self, f: Follow, *, reason: str, ended_at: datetime | None
    ) -> list[Subject]:
        await self.conn.execute(
            "INSERT INTO follows (follow_id, follower_person_id, follower_user_id, target,"
            " vehicle_id, licence_id, ended_at, end_reason, active)"
            " VALUES (%s, %s, %s, %s, %s, %s, COALESCE(%s, now()), %s, false)"
            " ON CONFLICT (follow_id) DO UPDATE SET active = false,"
            " ended_at = COALESCE(follows.ended_at, EXCLUDED.ended_at),"
            " end_reason = COALESCE(follows.end_reason, EXCLUDED.end_reason)",
            (
                f.follow_id,
                f.follower_person_id,
                f.follower_user_id,
                f.target,
                f.vehicle_id,
                f.licence_id,
                ended_at,
                reason,
            ),
        )
        return _follow_subjects(f)


def _follow_subjects(f: Follow) -> list[Subject]:
    subjects: list[Subject] = []
    if f.vehicle_id:
        subjects.append(("vehicle", f.vehicle_id))
    if f.licence_id:
        subjects.append(("licence", f.licence_id))
    return subjects
