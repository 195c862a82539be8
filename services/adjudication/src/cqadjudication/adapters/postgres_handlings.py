"""PostgreSQL repository of handlings, their face verifications, and the persons copy the
face steps need. Works inside the caller's transaction.

A handling is read with its handler in the WHERE clause, so another person's handling and
an unknown id are the same empty answer from the same query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn, uuid_or_nil
from cqcommon.fees import due_date

from cqadjudication.domain.handlings import Decision, Handling, VerificationStep
from cqadjudication.domain.verification import FaceSubject

_HANDLING_COLUMNS = (
    "h.handling_id::text", "h.violation_id::text", "v.vehicle_id::text",
    "h.handler_person_id::text", "h.handler_licence_id::text", "h.route", "h.relation",
    "h.state", "h.created_at", "h.staff_id", "h.decision_no", "v.decision_date", "v.fine_fen",
    "v.points",
)  # fmt: skip
_HANDLING = ", ".join(_HANDLING_COLUMNS)
#: where a step's columns start in a row of ``get`` (the handling's come first)
_FIRST_STEP_COLUMN = len(_HANDLING_COLUMNS)
_STEP = (
    "r.verification_id::text, r.step, r.person_id::text, coalesce(p.name, ''), r.adapter,"
    " r.certify_id, r.url, r.status, r.started_at, r.passed_at, r.expires_at, r.used_at"
)


def _step(row: tuple[Any, ...]) -> VerificationStep:
    return VerificationStep(
        verification_id=row[0],
        step=row[1],
        person_id=row[2],
        person_name=row[3],
        adapter=row[4],
        certify_id=row[5],
        url=row[6],
        status=row[7],
        started_at=row[8],
        passed_at=row[9],
        expires_at=row[10],
        used_at=row[11],
    )


class PostgresHandlingRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def subject(self, person_id: str) -> FaceSubject | None:
        cur = await self.conn.execute(
            "SELECT person_id::text, name, id_number FROM persons WHERE person_id = %s",
            (uuid_or_nil(person_id),),
        )
        row = await cur.fetchone()
        return FaceSubject(row[0], row[1], row[2]) if row else None

    async def add(self, handling: Handling) -> None:
        # The handling and its face steps in one statement (the foreign key is checked at
        # the statement's end, when the handling row is there).
        h = handling
        await self.conn.execute(
            "WITH h AS (INSERT INTO handlings (handling_id, violation_id, handler_person_id,"
            " handler_licence_id, route, relation, state, staff_id, decision_no, created_at,"
            " submitted_at) VALUES (%(handling_id)s, %(violation_id)s, %(handler_person_id)s,"
            " %(handler_licence_id)s, %(route)s, %(relation)s, %(state)s, %(staff_id)s,"
            " %(decision_no)s, %(created_at)s, %(submitted_at)s) RETURNING handling_id)"
            " INSERT INTO verifications (verification_id, handling_id, step, person_id,"
            " adapter, certify_id, url, status, started_at, passed_at, expires_at, used_at)"
            " SELECT s.verification_id, h.handling_id, s.step, s.person_id, s.adapter,"
            " s.certify_id, s.url, s.status, s.started_at, s.passed_at, s.expires_at,"
            " s.used_at FROM h, unnest(%(ids)s::uuid[], %(steps)s::text[],"
            " %(persons)s::uuid[], %(adapters)s::text[], %(certify_ids)s::text[],"
            " %(urls)s::text[], %(statuses)s::text[], %(started)s::timestamptz[],"
            " %(passed)s::timestamptz[], %(expires)s::timestamptz[], %(used)s::timestamptz[])"
            " AS s(verification_id, step, person_id, adapter, certify_id, url, status,"
            " started_at, passed_at, expires_at, used_at)",
            {
                "handling_id": h.handling_id,
                "violation_id": h.violation_id,
                "handler_person_id": h.handler_person_id,
                "handler_licence_id": h.handler_licence_id,
                "route": h.route,
                "relation": h.relation,
                "state": h.state,
                "staff_id": h.staff_id,
                "decision_no": h.decision.decision_no if h.decision else None,
                "created_at": h.created_at,
                "submitted_at": h.created_at if h.state == "submitted" else None,
                "ids": [st.verification_id for st in h.steps],
                "steps": [st.step for st in h.steps],
                "persons": [st.person_id for st in h.steps],
                "adapters": [st.adapter for st in h.steps],
                "certify_ids": [st.certify_id for st in h.steps],
                "urls": [st.url for st in h.steps],
                "statuses": [st.status for st in h.steps],
                "started": [st.started_at for st in h.steps],
                "passed": [st.passed_at for st in h.steps],
                "expires": [st.expires_at for st in h.steps],
                "used": [st.used_at for st in h.steps],
            },
        )

    async def get(
        self, handling_id: str, handler_person_id: str, *, for_update: bool = False
    ) -> Handling | None:
        key = (uuid_or_nil(handling_id), uuid_or_nil(handler_person_id))
        if for_update:
            # Lock first, read after: a statement that waited for the lock sees the joined
            # violation as of its start, so the read is its own statement (READ COMMITTED).
            await self.conn.execute(
                "SELECT 1 FROM handlings WHERE handling_id = %s AND handler_person_id = %s"
                " FOR UPDATE",
                key,
            )
        # The handling and its steps in one statement (a handling without face steps,
        # e.g. one at the counter, is one row of NULL step columns).
        cur = await self.conn.execute(
            f"SELECT {_HANDLING}, {_STEP} FROM handlings h JOIN violations v USING (violation_id)"
            " LEFT JOIN verifications r ON r.handling_id = h.handling_id"
            " LEFT JOIN persons p ON p.person_id = r.person_id"
            " WHERE h.handling_id = %s AND h.handler_person_id = %s"
            " ORDER BY (r.step = 'handler'), r.started_at",
            key,
        )
        rows = await cur.fetchall()
        if not rows:
            return None
        row = rows[0]
        steps = tuple(
            _step(r[_FIRST_STEP_COLUMN:]) for r in rows if r[_FIRST_STEP_COLUMN] is not None
        )
        decision = None
        if row[7] == "submitted":
            decision = Decision(
                decision_no=row[10],
                violation_id=row[1],
                decision_date=row[11],
                due_date=due_date(row[11]),
                fine_fen=row[12],
                points=row[13],
            )
        return Handling(
            handling_id=row[0],
            violation_id=row[1],
            vehicle_id=row[2],
            handler_person_id=row[3],
            handler_licence_id=row[4],
            route=row[5],
            relation=row[6],
            state=row[7],
            steps=steps,
            created_at=row[8],
            decision=decision,
            staff_id=row[9],
        )

    async def save(self, handling: Handling, *, now: datetime) -> None:
        # The handling's state and its steps' in one statement.
        h = handling
        await self.conn.execute(
            "WITH h AS (UPDATE handlings SET state = %(state)s, decision_no = %(decision_no)s,"
            " submitted_at = %(submitted_at)s WHERE handling_id = %(handling_id)s)"
            " UPDATE verifications r SET status = s.status, passed_at = s.passed_at,"
            " expires_at = s.expires_at, used_at = s.used_at"
            " FROM unnest(%(ids)s::uuid[], %(statuses)s::text[], %(passed)s::timestamptz[],"
            " %(expires)s::timestamptz[], %(used)s::timestamptz[])"
            " AS s(verification_id, status, passed_at, expires_at, used_at)"
            " WHERE r.verification_id = s.verification_id AND r.handling_id = %(handling_id)s",
            {
                "state": h.state,
                "decision_no": h.decision.decision_no if h.decision else None,
                "submitted_at": now if h.state == "submitted" else None,
                "handling_id": h.handling_id,
                "ids": [st.verification_id for st in h.steps],
                "statuses": [st.status for st in h.steps],
                "passed": [st.passed_at for st in h.steps],
                "expires": [st.expires_at for st in h.steps],
                "used": [st.used_at for st in h.steps],
            },
        )

    async def submitted_for(self, violation_id: str) -> Handling | None:
        cur = await self.conn.execute(
            "SELECT handling_id::text, handler_person_id::text FROM handlings"
            " WHERE violation_id = %s AND state = 'submitted'",
            (uuid_or_nil(violation_id),),
        )
        row = await cur.fetchone()
        return await self.get(row[0], row[1]) if row else None
