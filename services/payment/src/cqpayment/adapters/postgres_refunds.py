"""PostgreSQL repositories of refunds (R-PAY-5), provider notifications (R-PAY-7) and
feedback (R-PAY-9). They work inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn, uuid_or_nil

from cqpayment.domain.feedback import Feedback, FeedbackEntry
from cqpayment.domain.payments import Channel
from cqpayment.domain.refunds import Refund, RefundReason, RefundState

_REFUND_COLUMNS = (
    "r.refund_id::text, r.payment_id::text, r.decision_no, r.amount_fen, r.reason, r.state,"
    " r.out_request_no, p.channel, r.created_at, r.approved_by, r.approved_at, r.refunded_at"
)
_REFUND_FROM = "refunds r JOIN payments p ON p.payment_id = r.payment_id"


def _refund(row: tuple[Any, ...]) -> Refund:
    return Refund(
        refund_id=row[0],
        payment_id=row[1],
        decision_no=row[2],
        amount_fen=row[3],
        reason=RefundReason(row[4]),
        state=RefundState(row[5]),
        out_request_no=row[6],
        channel=Channel(row[7]),
        created_at=row[8],
        approved_by=row[9],
        approved_at=row[10],
        refunded_at=row[11],
    )


class PostgresRefundRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add(self, refund: Refund) -> None:
        await self.conn.execute(
            "INSERT INTO refunds (refund_id, payment_id, decision_no, amount_fen, reason, state,"
            " out_request_no, approved_by, created_at, approved_at, refunded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                refund.refund_id,
                refund.payment_id,
                refund.decision_no,
                refund.amount_fen,
                refund.reason.value,
                refund.state.value,
                refund.out_request_no,
                refund.approved_by,
                refund.created_at,
                refund.approved_at,
                refund.refunded_at,
            ),
        )

    async def _one(self, sql: str, refund_id: str) -> Refund | None:
        cur = await self.conn.execute(sql, (uuid_or_nil(refund_id),))
        row = await cur.fetchone()
        return _refund(row) if row else None

    async def get(self, refund_id: str) -> Refund | None:
        return await self._one(
            f"SELECT {_REFUND_COLUMNS} FROM {_REFUND_FROM} WHERE r.refund_id = %s", refund_id
        )

    async def lock(self, refund_id: str) -> Refund | None:
        return await self._one(
            f"SELECT {_REFUND_COLUMNS} FROM {_REFUND_FROM} WHERE r.refund_id = %s FOR UPDATE OF r",
            refund_id,
        )

    async def save(self, refund: Refund) -> None:
        await self.conn.execute(
            "UPDATE refunds SET state = %s, approved_by = %s, approved_at = %s, refunded_at = %s"
            " WHERE refund_id = %s",
            (
                refund.state.value,
                refund.approved_by,
                refund.approved_at,
                refund.refunded_at,
                refund.refund_id,
            ),
        )

    async def list(self, *, state: str | None, limit: int) -> list[Refund]:
        if state is None:
            cur = await self.conn.execute(
                f"SELECT {_REFUND_COLUMNS} FROM {_REFUND_FROM}"
                " ORDER BY r.created_at, r.refund_id LIMIT %s",
                (limit,),
            )
        else:
            cur = await self.conn.execute(
                f"SELECT {_REFUND_COLUMNS} FROM {_REFUND_FROM} WHERE r.state = %s"
                " ORDER BY r.created_at, r.refund_id LIMIT %s",
                (state, limit),
            )
        return [_refund(row) for row in await cur.fetchall()]


class PostgresNotificationRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add_accepted(
        self, *, notify_id: str, out_trade_no: str, trade_state: str, now: datetime
    ) -> bool:
        # a replay racing the first waits for it here, then finds it (DO NOTHING)
        cur = await self.conn.execute(
            "INSERT INTO notifications (notify_id, out_trade_no, trade_state, received_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (notify_id) DO NOTHING RETURNING 1",
            (notify_id, out_trade_no, trade_state, now),
        )
        return await cur.fetchone() is not None

    async def add_rejected(self, *, reason: str, out_trade_no: str | None, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO rejected_notifications (received_at, reason, out_trade_no)"
            " VALUES (%s, %s, %s)",
            # bounded: the order number as posted is unverified input
            (now, reason[:64], out_trade_no[:64] if out_trade_no else None),
        )


class PostgresFeedbackRepository:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add(self, feedback: Feedback) -> None:
        await self.conn.execute(
            "INSERT INTO feedback (feedback_id, payment_id, user_id, text, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (
                feedback.feedback_id,
                feedback.payment_id,
                feedback.user_id,
                feedback.text,
                feedback.created_at,
            ),
        )

    async def count_for(self, payment_id: str) -> int:
        cur = await self.conn.execute(
            "SELECT count(*) FROM feedback WHERE payment_id = %s", (payment_id,)
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def newest(self, *, limit: int) -> list[FeedbackEntry]:
        cur = await self.conn.execute(
            "SELECT f.feedback_id::text, f.payment_id::text, f.user_id, f.text, f.created_at,"
            " p.decision_no, p.state, p.out_trade_no, p.channel"
            " FROM feedback f JOIN payments p ON p.payment_id = f.payment_id"
            " ORDER BY f.created_at DESC, f.feedback_id DESC LIMIT %s",
            (limit,),
        )
        return [
            FeedbackEntry(
                feedback=Feedback(r[0], r[1], r[2], r[3], r[4]),
                decision_no=r[5],
                payment_state=r[6],
                out_trade_no=r[7],
                channel=r[8],
            )
            for r in await cur.fetchall()
        ]
