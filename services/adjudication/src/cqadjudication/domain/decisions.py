"""Penalty decisions (处罚决定书, R-ADJ-7): the decision number rule and the decision a
handling issues, pure.

A decision number is 16 digits: the issuing authority's 6-digit division code
(``decision_authority_code``, Chongqing ``50xxxx``) and a 10-digit serial. The serial comes
from the database (a sequence: collision-free across processes and restarts); the adapter
skips a serial whose number an imported decision already holds. The decision is dated
today in Asia/Shanghai and due 15 days later (R-PAY-2, ``cqcommon.fees``).
"""

from __future__ import annotations

from datetime import datetime

from cqcommon.clock import SHANGHAI
from cqcommon.fees import due_date

from cqadjudication.domain.handlings import Decision
from cqadjudication.domain.violations import Violation

SERIAL_DIGITS = 10
MAX_SERIAL = 10**SERIAL_DIGITS - 1


def decision_no(authority_code: str, serial: int) -> str:
    """``authority_code`` (6 digits) followed by ``serial`` zero-padded to 10 digits."""
    if len(authority_code) != 6 or not authority_code.isdigit():
        raise ValueError("the decision authority code must be 6 digits")
    if not 1 <= serial <= MAX_SERIAL:
        raise ValueError("a decision serial is 1..9999999999")
    return f"{authority_code}{serial:0{SERIAL_DIGITS}d}"


def issue(violation: Violation, number: str, *, now: datetime) -> Decision:
    """The decision for ``violation`` issued ``now``: dated today in Asia/Shanghai."""
    decided_on = now.astimezone(SHANGHAI).date()
    return Decision(
        decision_no=number,
        violation_id=violation.violation_id,
        decision_date=decided_on,
        due_date=due_date(decided_on),
        fine_fen=violation.fine_fen,
        points=violation.points,
    )
