"""PostgreSQL adapter of the payment facts adjudication keeps (``PaymentFacts`` port): which
payments settled a violation's fine. The violation is ``paid`` while one of them is not
refunded, and ``handled_unpaid`` again otherwise (R-PAY-5: a duplicate's refund leaves the
first payment standing). Written by the payment-event consumer inside its inbox transaction."""

from __future__ import annotations

from datetime import datetime

from cqcommon.db import Conn, uuid_or_nil

from cqadjudication.domain.violations import violation_status


class PostgresPaymentFacts:
    """Works inside the caller's transaction (``conn``: the consumer's inbox transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def fine_paid(
        self, *, payment_id: str, violation_id: str, decision_no: str, paid_at: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO case_payments (payment_id, violation_id, decision_no, paid_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (payment_id) DO UPDATE SET"
            " paid_at = EXCLUDED.paid_at",
            (payment_id, uuid_or_nil(violation_id), decision_no, paid_at),
        )
        await self._restate(violation_id)

    async def payment_refunded(
        self, *, payment_id: str, violation_id: str, decision_no: str, refunded_at: datetime
    ) -> None:
        # A refund may be delivered before (or without) its FinePaid: the row still records
        # that this payment no longer pays anything.
        await self.conn.execute(
            "INSERT INTO case_payments (payment_id, violation_id, decision_no, refunded_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (payment_id) DO UPDATE SET"
            " refunded_at = EXCLUDED.refunded_at",
            (payment_id, uuid_or_nil(violation_id), decision_no, refunded_at),
        )
        await self._restate(violation_id)

    async def _restate(self, violation_id: str) -> None:
        """The violation's status from its decision and its standing payments, by the one
        status rule (``domain.violations.violation_status``), on the locked row."""
        cur = await self.conn.execute(
            "SELECT v.decision_no IS NOT NULL, EXISTS (SELECT 1 FROM case_payments p"
            "  WHERE p.violation_id = v.violation_id AND p.paid_at IS NOT NULL"
            "  AND p.refunded_at IS NULL)"
            " FROM violations v WHERE v.violation_id = %s FOR UPDATE",
            (uuid_or_nil(violation_id),),
        )
        row = await cur.fetchone()
        if row is None:  # payment learns decisions from adjudication: not expected
            return
        status = violation_status(decided=bool(row[0]), paid=bool(row[1]))
        await self.conn.execute(
            "UPDATE violations SET status = %s WHERE violation_id = %s AND status <> %s",
            (status, uuid_or_nil(violation_id), status),
        )
