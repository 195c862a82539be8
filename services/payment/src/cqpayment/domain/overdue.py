"""Overdue decisions and their one SMS (R-JOB-6, R-PAY-2), as pure rules.

A decision is due 15 days after its date (``cqcommon.fees``); from the 16th day it is
overdue and the late fee runs. The nightly job marks each overdue decision once, ever, and
sends its party one SMS naming the decision (its last 4 digits only: an SMS is read on a
lock screen) and the amount due that day. What it decides per decision:

- paid by then (a succeeded payment): ``paid``, nothing sent;
- the party has no phone on record: ``no_phone``, marked without an SMS;
- else ``claimed``, then ``sms_sent`` once the gateway took it (or unmarked again when
  it did not, so the next night retries).

Decisions the job leaves for later: a disputed one (R-ADJ-9: it cannot be paid until the
dispute is cleared, so "please pay" would be wrong), one whose party the registry copy
does not know yet, and another province's (not paid here, R-PAY-1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from cqcommon.fees import DUE_AFTER_DAYS, amount_due
from cqcommon.identifiers import CHONGQING_PROVINCE_CODE


class OverdueNotice(enum.StrEnum):
    CLAIMED = "claimed"
    SMS_SENT = "sms_sent"
    NO_PHONE = "no_phone"
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class OverdueCandidate:
    """A decision past its due date the job has not decided about yet."""

    decision_no: str
    decision_date: date
    fine_fen: int
    paid: bool
    disputed: bool
    party_known: bool
    phone: str | None


def latest_overdue_decision_date(today: date) -> date:
    """Decisions dated on or before this are overdue ``today`` (their 16th day or later)."""
    return today - timedelta(days=DUE_AFTER_DAYS + 1)


def is_overdue(decision_date: date, today: date) -> bool:
    return decision_date <= latest_overdue_decision_date(today)


def notice_for(candidate: OverdueCandidate) -> OverdueNotice | None:
    """What the job does about ``candidate`` now; None: leave it for a later night."""
    if not candidate.decision_no.startswith(CHONGQING_PROVINCE_CODE):
        return None
    if candidate.paid:
        return OverdueNotice.PAID
    if candidate.disputed or not candidate.party_known:
        return None
    return OverdueNotice.CLAIMED if candidate.phone else OverdueNotice.NO_PHONE


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def sms_params(candidate: OverdueCandidate, today: date) -> dict[str, str]:
    """The template's parameters: the decision's last 4 digits and the yuan due ``today``
    (fine and late fee, R-PAY-2). No name, plate or full number: an SMS is read anywhere."""
    due = amount_due(candidate.fine_fen, candidate.decision_date, today)
    return {"decision": candidate.decision_no[-4:], "amount": yuan(due.total_fen)}
