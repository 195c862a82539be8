"""PostgreSQL adapter of payment's copy of adjudication's decisions and the registry (the
``DecisionCopy`` port), written by the event consumers inside their inbox transaction.
Upserts by id, so a replayed event changes nothing new.

Events of different topics may arrive in any order between them: a decision learned before
its party's registry record keeps ``party_person_id`` NULL until the vehicle or licence
arrives (then filled here), and a decision learned before its violation's record (it cannot
happen on one partition, but costs nothing to allow) gets the facts when they come.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cqcommon.db import Conn

from cqpayment.domain.decisions import Decision, ViolationFacts


class PostgresDecisionCopy:
    """Works inside the caller's transaction (``conn``: the consumer's inbox transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def upsert_person(self, *, person_id: str, name: str, phone: str | None = None) -> None:
        # the registry's latest word on the phone wins, also when it dropped it (R-JOB-6)
        await self.conn.execute(
            "INSERT INTO persons (person_id, name, phone) VALUES (%s, %s, %s)"
            " ON CONFLICT (person_id) DO UPDATE SET name = EXCLUDED.name,"
            " phone = EXCLUDED.phone",
            (person_id, name, phone),
        )

    async def upsert_vehicle(
        self, *, vehicle_id: str, owner_person_id: str, plate_number: str
    ) -> None:
        await self.conn.execute(
            "INSERT INTO vehicles (vehicle_id, owner_person_id, plate_number) VALUES (%s, %s, %s)"
            " ON CONFLICT (vehicle_id) DO UPDATE SET owner_person_id = EXCLUDED.owner_person_id,"
            " plate_number = EXCLUDED.plate_number",
            (vehicle_id, owner_person_id, plate_number),
        )
        # a recorded decision without a licence is against the owner at the time it is
        # learned; one learned before the owner was known gets them now (never changed later)
        await self._lock_party("vehicle", vehicle_id)
        await self.conn.execute(
            "UPDATE decisions SET party_person_id = %s, updated_at = now()"
            " WHERE vehicle_id = %s AND licence_id IS NULL AND party_person_id IS NULL",
            (owner_person_id, vehicle_id),
        )

    async def upsert_licence(self, *, licence_id: str, person_id: str) -> None:
        await self._lock_party("licence", licence_id)
        await self.conn.execute(
            "INSERT INTO licences (licence_id, person_id) VALUES (%s, %s)"
            " ON CONFLICT (licence_id) DO UPDATE SET person_id = EXCLUDED.person_id",
            (licence_id, person_id),
        )
        await self.conn.execute(
            "UPDATE decisions SET party_person_id = %s, updated_at = now()"
            " WHERE licence_id = %s AND party_person_id IS NULL",
            (person_id, licence_id),
        )

    async def _lock_party(self, kind: str, subject_id: str) -> None:
        """Serialise learning a decision's party with learning the licence or vehicle it
        hangs on. The two arrive through two consumer groups, in concurrent transactions:
        without the lock, a decision whose licence row was not committed yet reads no
        holder while the licence's transaction updates no decision (it is not committed
        either), and the decision would stay without a party, never payable. Under the
        lock (held to commit) the later transaction's statements see the earlier's rows."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"payment.party:{kind}:{subject_id}",)
        )

    async def licence_holder(self, licence_id: str) -> str | None:
        await self._lock_party("licence", licence_id)
        cur = await self.conn.execute(
            "SELECT person_id::text FROM licences WHERE licence_id = %s", (licence_id,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def vehicle_owner(self, vehicle_id: str) -> str | None:
        await self._lock_party("vehicle", vehicle_id)
        cur = await self.conn.execute(
            "SELECT owner_person_id::text FROM vehicles WHERE vehicle_id = %s", (vehicle_id,)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def upsert_violations(self, facts: Sequence[ViolationFacts], *, now: datetime) -> None:
        if not facts:
            return
        # one pipeline for both statements: one round trip for the run, one statement per
        # violation (a violation twice in the run is upserted twice, in order, as one at a
        # time); nothing here reads a rowcount
        async with self.conn.pipeline(), self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO violations (violation_id, vehicle_id, licence_id, plate_number,"
                " violation_code, description_zh, occurred_at, place, fine_fen, points,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (violation_id) DO UPDATE SET vehicle_id = EXCLUDED.vehicle_id,"
                " licence_id = EXCLUDED.licence_id, plate_number = EXCLUDED.plate_number,"
                " violation_code = EXCLUDED.violation_code,"
                " description_zh = EXCLUDED.description_zh, occurred_at = EXCLUDED.occurred_at,"
                " place = EXCLUDED.place, fine_fen = EXCLUDED.fine_fen, points = EXCLUDED.points,"
                " updated_at = EXCLUDED.updated_at",
                [
                    (
                        f.violation_id,
                        f.vehicle_id,
                        f.licence_id,
                        f.plate_number,
                        f.violation_code,
                        f.description_zh,
                        f.occurred_at,
                        f.place,
                        f.fine_fen,
                        f.points,
                        now,
                    )
                    for f in facts
                ],
            )
            await cur.executemany(
                "UPDATE decisions SET plate_number = %s, violation_code = %s, description_zh = %s,"
                " occurred_at = %s, place = %s, updated_at = %s"
                " WHERE violation_id = %s AND occurred_at IS NULL",
                [
                    (
                        f.plate_number,
                        f.violation_code,
                        f.description_zh,
                        f.occurred_at,
                        f.place,
                        now,
                        f.violation_id,
                    )
                    for f in facts
                ],
            )

    async def violation(self, violation_id: str) -> tuple[ViolationFacts, bool] | None:
        cur = await self.conn.execute(
            "SELECT violation_id::text, vehicle_id::text, licence_id::text, plate_number,"
            " violation_code, description_zh, occurred_at, place, fine_fen, points, disputed"
            " FROM violations WHERE violation_id = %s",
            (violation_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return ViolationFacts(*row[:10]), bool(row[10])

    async def upsert_decision(self, decision: Decision, *, now: datetime) -> None:
        # first word wins: a redelivered or second event about the decision changes nothing
        await self.conn.execute(
            "INSERT INTO decisions (decision_no, violation_id, decision_date, fine_fen, points,"
            " party_person_id, vehicle_id, licence_id, plate_number, violation_code,"
            " description_zh, occurred_at, place, disputed, learned_from, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s) ON CONFLICT DO NOTHING",
            (
                decision.decision_no,
                decision.violation_id,
                decision.decision_date,
                decision.fine_fen,
                decision.points,
                decision.party_person_id,
                decision.vehicle_id,
                decision.licence_id,
                decision.plate_number,
                decision.violation_code,
                decision.description_zh,
                decision.occurred_at,
                decision.place,
                decision.disputed,
                decision.learned_from,
                now,
                now,
            ),
        )

    async def set_disputed(self, violation_id: str, disputed: bool, *, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE violations SET disputed = %s, updated_at = %s WHERE violation_id = %s",
            (disputed, now, violation_id),
        )
        await self.conn.execute(
            "UPDATE decisions SET disputed = %s, updated_at = %s WHERE violation_id = %s",
            (disputed, now, violation_id),
        )
