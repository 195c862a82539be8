"""PostgreSQL repositories of payable decisions and payments (the ``DecisionRepository``
and ``PaymentRepository`` ports). They work inside the caller's transaction; the unit of
work (``adapters.unit_of_work``) turns a constraint the database enforces (a second
pending or succeeded payment of one decision) into its stable error.

``get_for`` puts the caller in the WHERE clause (R-PAY-4): one statement answers both
"no such payment" and "not yours", so the two take the same path and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn, uuid_or_nil

from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import Decision, PaymentStatus
from cqpayment.domain.payments import Channel, Payment, PaymentState

_DECISION_COLUMNS = (
    "decision_no, violation_id::text, decision_date, fine_fen, points,"
    " party_person_id::text, vehicle_id::text, licence_id::text, plate_number,"
    " violation_code, description_zh, occurred_at, place, disputed, learned_from"
)

PAYMENT_COLUMNS = (
    "payment_id::text, decision_no, violation_id::text, channel, state, amount_fen,"
    " fine_fen, late_fee_fen, out_trade_no, provider_trade_no, payer_user_id,"
    " payer_person_id::text, staff_id, created_at, expires_at, paid_at, failure_reason"
)


def decision_from_row(row: tuple[Any, ...]) -> Decision:
    return Decision(
        decision_no=row[0],
        violation_id=row[1],
        decision_date=row[2],
        fine_fen=row[3],
        points=row[4],
        party_person_id=row[5],
        vehicle_id=row[6],
        licence_id=row[7],
        plate_number=row[8],
        violation_code=row[9],
        description_zh=row[10],
        occurred_at=row[11],
        place=row[12],
        disputed=row[13],
        learned_from=row[14],
    )


def payment_from_row(row: tuple[Any, ...]) -> Payment:
    return Payment(
        payment_id=row[0],
        decision_no=row[1],
        violation_id=row[2],
        channel=Channel(row[3]),
        state=PaymentState(row[4]),
        amount_fen=row[5],
        fine_fen=row[6],
        late_fee_fen=row[7],
        out_trade_no=row[8],
        provider_trade_no=row[9],
        payer_user_id=row[10],
        payer_person_id=row[11],
        staff_id=row[12],
        created_at=row[13],
        expires_at=row[14],
        paid_at=row[15],
        failure_reason=row[16],
    )


class PostgresDecisionRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(self, sql: str, decision_no: str) -> Decision | None:
        cur = await self.conn.execute(sql, (decision_no,))
        row = await cur.fetchone()
        return decision_from_row(row) if row else None

    async def get(self, decision_no: str) -> Decision | None:
        return await self._one(
            f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE decision_no = %s", decision_no
        )

    async def lock(self, decision_no: str) -> Decision | None:
        return await self._one(
            f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE decision_no = %s FOR UPDATE",
            decision_no,
        )

    async def party_name(self, person_id: str) -> str | None:
        cur = await self.conn.execute(
            "SELECT name FROM persons WHERE person_id = %s", (uuid_or_nil(person_id),)
        )
        row = await cur.fetchone()
        return row[0] if row else None

    async def status(self, decision_no: str, now: datetime) -> PaymentStatus:
        cur = await self.conn.execute(
            "SELECT coalesce(bool_or(state = 'succeeded'), false),"
            " coalesce(bool_or(state = 'pending' AND expires_at > %s), false)"
            " FROM payments WHERE decision_no = %s",
            (now, decision_no),
        )
        row = await cur.fetchone()
        paid, in_progress = row if row else (False, False)
        if paid:
            return PaymentStatus.PAID
        return PaymentStatus.IN_PROGRESS if in_progress else PaymentStatus.UNPAID


class PostgresPaymentRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Payment | None:
        cur = await self.conn.execute(sql, params)
        row = await cur.fetchone()
        return payment_from_row(row) if row else None

    async def add(self, payment: Payment) -> None:
        await self.conn.execute(
            "INSERT INTO payments (payment_id, decision_no, violation_id, channel, state,"
            " amount_fen, fine_fen, late_fee_fen, out_trade_no, provider_trade_no,"
            " payer_user_id, payer_person_id, staff_id, created_at, expires_at, paid_at,"
            " failure_reason, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                payment.payment_id,
                payment.decision_no,
                payment.violation_id,
                payment.channel.value,
                payment.state.value,
                payment.amount_fen,
                payment.fine_fen,
                payment.late_fee_fen,
                payment.out_trade_no,
                payment.provider_trade_no,
                payment.payer_user_id,
                payment.payer_person_id,
                payment.staff_id,
                payment.created_at,
                payment.expires_at,
                payment.paid_at,
                payment.failure_reason,
                payment.created_at,
            ),
        )

    async def get(self, payment_id: str) -> Payment | None:
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = %s",
            (uuid_or_nil(payment_id),),
        )

    async def get_for(self, payment_id: str, caller: Caller) -> Payment | None:
        # Payment.visible_to, as SQL: staff, the payer user, or the decision's party for
        # a counter payment (whose payer_person_id is the party)
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = %s AND"
            " (%s OR payer_user_id = %s OR (channel <> 'alipay' AND payer_person_id = %s))",
            (
                uuid_or_nil(payment_id),
                caller.is_staff,
                caller.user_id or None,
                uuid_or_nil(caller.person_id) if caller.person_id else None,
            ),
        )

    async def lock(self, payment_id: str) -> Payment | None:
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = %s FOR UPDATE",
            (uuid_or_nil(payment_id),),
        )

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None:
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE out_trade_no = %s", (out_trade_no,)
        )

    async def pending_of(self, decision_no: str) -> Payment | None:
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments"
            " WHERE decision_no = %s AND state = 'pending' FOR UPDATE",
            (decision_no,),
        )

    async def succeeded_of(self, decision_no: str) -> Payment | None:
        return await self._one(
            f"SELECT {PAYMENT_COLUMNS} FROM payments"
            " WHERE decision_no = %s AND state = 'succeeded'",
            (decision_no,),
        )

    async def save(self, payment: Payment, *, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE payments SET state = %s, provider_trade_no = %s, paid_at = %s,"
            " failure_reason = %s, updated_at = %s WHERE payment_id = %s",
            (
                payment.state.value,
                payment.provider_trade_no,
                payment.paid_at,
                payment.failure_reason,
                now,
                payment.payment_id,
            ),
        )

    async def pending_page(
        self, *, created_before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Payment]:
        if after is None:
            cur = await self.conn.execute(
                f"SELECT {PAYMENT_COLUMNS} FROM payments"
                " WHERE state = 'pending' AND created_at < %s"
                " ORDER BY created_at, payment_id LIMIT %s",
                (created_before, limit),
            )
        else:
            cur = await self.conn.execute(
                f"SELECT {PAYMENT_COLUMNS} FROM payments"
                " WHERE state = 'pending' AND created_at < %s AND (created_at, payment_id) > (%s, %s)"
                " ORDER BY created_at, payment_id LIMIT %s",
                (created_before, after[0], after[1], limit),
            )
        return [payment_from_row(row) for row in await cur.fetchall()]
