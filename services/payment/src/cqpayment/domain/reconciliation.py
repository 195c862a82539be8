"""Reconciling a day's online payments with the provider's statement (R-JOB-2), as a pure
comparison, and which day a night's run is about.

The statement of an Asia/Shanghai day lists every trade the provider saw paid that day.
Ours are the Alipay payments we hold paid (``succeeded``, and ``duplicate`` / ``refunded``:
their money arrived too) with ``paid_at`` that day; ``paid_at`` is the provider's own
payment time whenever it told us one, so both sides cut the day at the same instant. Each
order number falls in one of four boxes:

- matched: on both sides, same amount;
- ``ours_only``: we hold it paid, the statement lacks it (money we think arrived did not,
  or arrived on another day);
- ``theirs_only``: the statement has it and we do not hold it paid: unknown to us, or
  still ``pending`` / ``failed`` here (a lost notification). It is listed, not healed
  here: the pending-payment job (R-JOB-1) settles pending payments from the provider's
  own query, the one settlement path;
- ``amount_differs``: on both sides with different amounts.

A statement line is looked up among *all* our payments by its order number (not only
those paid that day), so a payment we hold paid since another day is compared by amount,
not reported as unknown.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cqcommon.clock import SHANGHAI

from cqpayment.domain.payments import SETTLED_PAID, PaymentState
from cqpayment.domain.provider import StatementLine


class MismatchKind(enum.StrEnum):
    OURS_ONLY = "ours_only"
    THEIRS_ONLY = "theirs_only"
    AMOUNT_DIFFERS = "amount_differs"


@dataclass(frozen=True, slots=True)
class OurPayment:
    """What reconciliation needs of one of our online payments."""

    out_trade_no: str
    state: PaymentState
    amount_fen: int
    paid_at: datetime | None

    @property
    def paid(self) -> bool:
        return self.state in SETTLED_PAID


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    out_trade_no: str
    our_amount_fen: int | None
    their_amount_fen: int | None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The outcome of one day: the counts and the mismatches (by kind, then order number)."""

    day: date
    statement_lines: int
    our_payments: int
    matched: int
    mismatches: tuple[Mismatch, ...]

    def count(self, kind: MismatchKind) -> int:
        return sum(1 for m in self.mismatches if m.kind is kind)


@dataclass(frozen=True, slots=True)
class ReconciledDay:
    """A stored day as staff read it (GetReconciliation)."""

    day: date
    completed_at: datetime
    statement_lines: int
    our_payments: int
    mismatches: tuple[Mismatch, ...]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of the Asia/Shanghai calendar day."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def night_of(instant: datetime) -> date:
    """The night (the Asia/Shanghai day whose 22:00 starts the window) ``instant`` belongs
    to: the window runs 22:00 to 00:30, so 00:10 on the 21st is the night of the 20th.
    Noon is the cut: a forced run in the daytime belongs to the night before it."""
    return (instant.astimezone(SHANGHAI) - timedelta(hours=12)).date()


def day_to_reconcile(night: date) -> date:
    """The day a night reconciles: the one before. Alipay produces a day's trade bill the
    next morning (before that the bill query answers ``isp.bill_not_exist``), so at 22:00
    the newest complete statement is yesterday's; today's would also miss the payments of
    its last two hours."""
    return night - timedelta(days=1)


def reconcile(
    day: date, ours: Iterable[OurPayment], statement: Iterable[StatementLine]
) -> Reconciliation:
    """Compare ``statement`` (the provider's lines of ``day``) with ``ours``: our payments
    paid on ``day`` plus any of ours whose order number the statement names."""
    start, end = day_bounds(day)
    by_number = {p.out_trade_no: p for p in ours}
    lines = {line.out_trade_no: line for line in statement}
    ours_that_day = {
        no
        for no, p in by_number.items()
        if p.paid and p.paid_at is not None and start <= p.paid_at < end
    }
    mismatches: list[Mismatch] = []
    matched = 0
    for no, line in lines.items():
        mine = by_number.get(no)
        if mine is None or not mine.paid:
            mismatches.append(Mismatch(MismatchKind.THEIRS_ONLY, no, None, line.total_amount_fen))
        elif mine.amount_fen != line.total_amount_fen:
            mismatches.append(
                Mismatch(MismatchKind.AMOUNT_DIFFERS, no, mine.amount_fen, line.total_amount_fen)
            )
        else:
            matched += 1
    for no in ours_that_day - lines.keys():
        mismatches.append(Mismatch(MismatchKind.OURS_ONLY, no, by_number[no].amount_fen, None))
    order = list(MismatchKind)
    mismatches.sort(key=lambda m: (order.index(m.kind), m.out_trade_no))
    return Reconciliation(
        day=day,
        statement_lines=len(lines),
        our_payments=len(ours_that_day),
        matched=matched,
        mismatches=tuple(mismatches),
    )
