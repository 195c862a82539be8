"""R-Q-3 / R-PAY-2: the amount a violation costs today, as a user sees it.

- ``unhandled``: no decision yet; what handling it now would cost (the fine), no due date;
- ``handled_unpaid``: fine + late fee on today's Asia/Shanghai date (``cqcommon.fees``,
  the same function payment charges with);
- ``paid``: nothing is due; the due date stays shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cqcommon.fees import amount_due, due_date


@dataclass(frozen=True)
class AmountView:
    due_date: date | None
    late_fee_fen: int
    amount_due_fen: int


def amount_view(
    *, status: str, fine_fen: int, decision_date: date | None, today: date
) -> AmountView:
    if status == "paid":
        return AmountView(due_date(decision_date) if decision_date else None, 0, 0)
    if decision_date is None:
        return AmountView(None, 0, fine_fen)
    owed = amount_due(fine_fen, decision_date, today)
    return AmountView(owed.due_date, owed.late_fee_fen, owed.total_fen)
