"""PostgreSQL repositories of payment's nightly jobs: the reconciliation of a day with the
provider's statement (``ReconciliationRepository``, R-JOB-2) and the overdue decisions
(``OverdueRepository``, R-JOB-6). They work inside the caller's transaction.

Neither locks a payment: the reconciliation only reads payments (on the partial index of
paid online payments), and the overdue job locks decision rows with ``SKIP LOCKED``, so a
decision busy with a payment (or a provider notification in the window) is left for a later
night rather than waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from cqcommon.db import Conn

from cqpayment.domain.overdue import OverdueCandidate, OverdueNotice
from cqpayment.domain.payments import PaymentState
from cqpayment.domain.reconciliation import (
    Mismatch,
    MismatchKind,
    OurPayment,
    ReconciledDay,
    Reconciliation,
)


class PostgresReconciliationRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def our_payments(
        self, *, paid_from: datetime, paid_until: datetime, out_trade_nos: Sequence[str]
    ) -> list[OurPayment]:
        # two index scans (paid that day; the statement's numbers), united
        cur = await self.conn.execute(
            "SELECT out_trade_no, state, amount_fen, paid_at FROM payments"
            " WHERE channel = 'alipay' AND paid_at IS NOT NULL AND paid_at >= %s"
            " AND paid_at < %s AND state IN ('succeeded', 'duplicate', 'refunded')"
            " UNION SELECT out_trade_no, state, amount_fen, paid_at FROM payments"
            " WHERE channel = 'alipay' AND out_trade_no = ANY(%s)",
            (paid_from, paid_until, list(out_trade_nos)),
        )
        return [
            OurPayment(out_trade_no=r[0], state=PaymentState(r[1]), amount_fen=r[2], paid_at=r[3])
            for r in await cur.fetchall()
        ]

    async def replace_day(self, result: Reconciliation, *, completed_at: datetime) -> None:
        # the day's row first (the mismatches reference it); its old mismatches go
        await self.conn.execute(
            "DELETE FROM reconciliation_mismatches WHERE day = %s", (result.day,)
        )
        await self.conn.execute(
            "INSERT INTO reconciliation_days (day, completed_at, statement_lines, our_payments,"
            " matched, ours_only, theirs_only, amount_differs)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (day) DO UPDATE SET completed_at = EXCLUDED.completed_at,"
            " statement_lines = EXCLUDED.statement_lines,"
            " our_payments = EXCLUDED.our_payments, matched = EXCLUDED.matched,"
            " ours_only = EXCLUDED.ours_only, theirs_only = EXCLUDED.theirs_only,"
            " amount_differs = EXCLUDED.amount_differs",
            (
                result.day,
                completed_at,
                result.statement_lines,
                result.our_payments,
                result.matched,
                result.count(MismatchKind.OURS_ONLY),
                result.count(MismatchKind.THEIRS_ONLY),
                result.count(MismatchKind.AMOUNT_DIFFERS),
            ),
        )
        if result.mismatches:
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO reconciliation_mismatches (day, kind, out_trade_no,"
                    " our_amount_fen, their_amount_fen) VALUES (%s, %s, %s, %s, %s)",
                    [
                        (
                            result.day,
                            m.kind.value,
                            m.out_trade_no,
                            m.our_amount_fen,
                            m.their_amount_fen,
                        )
                        for m in result.mismatches
                    ],
                )

    async def day(self, day: date) -> ReconciledDay | None:
        cur = await self.conn.execute(
            "SELECT completed_at, statement_lines, our_payments FROM reconciliation_days"
            " WHERE day = %s",
            (day,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await self.conn.execute(
            "SELECT kind, out_trade_no, our_amount_fen, their_amount_fen"
            " FROM reconciliation_mismatches WHERE day = %s",
            (day,),
        )
        order = list(MismatchKind)
        mismatches = sorted(
            (Mismatch(MismatchKind(r[0]), r[1], r[2], r[3]) for r in await cur.fetchall()),
            key=lambda m: (order.index(m.kind), m.out_trade_no),
        )
        return ReconciledDay(
            day=day,
            completed_at=row[0],
            statement_lines=row[1],
            our_payments=row[2],
            mismatches=tuple(mismatches),
        )


def _candidate(row: tuple[Any, ...]) -> OverdueCandidate:
    return OverdueCandidate(
        decision_no=row[0],
        decision_date=row[1],
        fine_fen=row[2],
        paid=row[3],
        disputed=row[4],
        party_known=row[5],
        phone=row[6],
    )


_CANDIDATE_SELECT = (
    "SELECT d.decision_no, d.decision_date, d.fine_fen,"
    " EXISTS (SELECT 1 FROM payments p WHERE p.decision_no = d.decision_no"
    " AND p.state = 'succeeded'),"
    " d.disputed, d.party_person_id IS NOT NULL, pe.phone"
    " FROM decisions d LEFT JOIN persons pe ON pe.person_id = d.party_person_id"
    " WHERE d.overdue_notice IS NULL AND d.decision_date <= %s"
)
_CANDIDATE_ORDER = " ORDER BY d.decision_date, d.decision_no LIMIT %s FOR UPDATE OF d SKIP LOCKED"
_CANDIDATES_FROM_START = _CANDIDATE_SELECT + _CANDIDATE_ORDER
_CANDIDATES_AFTER = (
    _CANDIDATE_SELECT + " AND (d.decision_date, d.decision_no) > (%s, %s)" + _CANDIDATE_ORDER
)


class PostgresOverdueRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def candidates(
        self, *, dated_until: date, after: tuple[date, str] | None, limit: int
    ) -> list[OverdueCandidate]:
        if after is None:
            cur = await self.conn.execute(_CANDIDATES_FROM_START, (dated_until, limit))
        else:
            cur = await self.conn.execute(
                _CANDIDATES_AFTER, (dated_until, after[0], after[1], limit)
            )
        return [_candidate(row) for row in await cur.fetchall()]

    async def mark(self, decision_no: str, notice: OverdueNotice, *, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE decisions SET overdue_notice = %s, overdue_marked_at = %s, updated_at = %s"
            " WHERE decision_no = %s AND overdue_notice IS NULL",
            (notice.value, now, now, decision_no),
        )

    async def sent(self, decision_no: str, *, sms_id: str, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE decisions SET overdue_notice = 'sms_sent', overdue_sms_id = %s,"
            " updated_at = %s WHERE decision_no = %s AND overdue_notice = 'claimed'",
            (sms_id or None, now, decision_no),
        )

    async def unclaim(self, decision_no: str) -> None:
        await self.conn.execute(
            "UPDATE decisions SET overdue_notice = NULL, overdue_marked_at = NULL"
            " WHERE decision_no = %s AND overdue_notice = 'claimed'",
            (decision_no,),
        )
