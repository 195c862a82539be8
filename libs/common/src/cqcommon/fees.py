"""R-PAY-2: due date, late fee and amount due of a penalty decision — one pure function
shared by the query service (what a user sees) and the payment service (what is charged).

Rules, all in whole fen and Asia/Shanghai calendar days (the caller passes "today" from
an injectable clock, ``cqcommon.clock.today_in_shanghai``):

- the fine is due **15 days after the decision date**: a decision dated 1 March is due
  on 16 March, and paying on 16 March costs the fine only;
- from the **16th day** a late fee of **3 % of the fine per day** accrues: on 17 March
  one day, 3 %; on 18 March two days, 6 % …;
- the late fee never exceeds the fine, so at most twice the fine is ever due.

Fractions of a fen are rounded down, in the payer's favour (3 % of 50.50 yuan is
151.5 fen → 151 fen a day, computed on the total, not per day, so no drift accrues).

``amount_due_at`` is the same rule for an instant rather than a date: the day changes at
Asia/Shanghai midnight (16:00 UTC), whatever zone the instant was given in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cqcommon.clock import FixedClock, today_in_shanghai

#: Days after the decision date by which the fine is due.
DUE_AFTER_DAYS = 15
#: Late fee per day, in percent of the fine.
LATE_FEE_PERCENT_PER_DAY = 3


@dataclass(frozen=True)
class AmountDue:
    """What a decision costs on a given day."""

    due_date: date
    days_late: int
    fine_fen: int
    late_fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.fine_fen + self.late_fee_fen


def due_date(decision_date: date) -> date:
    """The last day the fine alone settles the decision (R-PAY-2)."""
    return decision_date + timedelta(days=DUE_AFTER_DAYS)


def late_fee_fen(fine_fen: int, days_late: int) -> int:
    """3 % of the fine per day late, rounded down to the fen, capped at the fine."""
    if fine_fen < 0:
        raise ValueError("fine_fen must not be negative")
    if days_late <= 0:
        return 0
    return min(fine_fen, fine_fen * LATE_FEE_PERCENT_PER_DAY * days_late // 100)


def amount_due(fine_fen: int, decision_date: date, today: date) -> AmountDue:
    """Fine plus late fee owed on ``today`` for a decision of ``decision_date`` (R-PAY-2)."""
    due = due_date(decision_date)
    days_late = max(0, (today - due).days)
    return AmountDue(
        due_date=due,
        days_late=days_late,
        fine_fen=fine_fen,
        late_fee_fen=late_fee_fen(fine_fen, days_late),
    )


def amount_due_at(fine_fen: int, decision_date: date, now: datetime) -> AmountDue:
    """``amount_due`` on the Asia/Shanghai calendar day of the instant ``now`` (R-PAY-2).

    ``now`` must be timezone-aware (a naive datetime raises ``ValueError``): a naive one
    would be read in the server's zone, and a server in UTC would charge yesterday's
    amount for the first eight hours of every Chongqing day.
    """
    return amount_due(fine_fen, decision_date, today_in_shanghai(FixedClock(now)))
