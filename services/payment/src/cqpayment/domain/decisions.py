"""Payable penalty decisions (R-PAY-1/2) as the payment service knows them, and how one is
shown to a caller: priced for "today" in Asia/Shanghai, its payment state, whether it is
payable here, and the party's name and plate whole or masked (R-Q-4).

Payment learns decisions from adjudication's events (``ViolationRecorded`` carrying a
decision number, ``ViolationHandled``); the facts of the violation (plate, code, place)
come with ``ViolationRecorded`` and may be missing for a while if the events arrive out of
order, hence the optional fields.

Anyone logged in may look a decision up by its number (paying another person's fine is
allowed, as at a bank counter), but only the party and staff see the party's personal data
whole. A decision whose party the registry copy does not know yet answers
``DECISION_NOT_FOUND`` (whose message says a decision just issued takes a few minutes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from cqcommon.errors import DECISION_NOT_PAYABLE_HERE
from cqcommon.fees import AmountDue, amount_due
from cqcommon.identifiers import CHONGQING_PROVINCE_CODE, parse_decision_no
from cqcommon.masking import mask_name, mask_plate, sees_in_full

from cqpayment.domain.callers import Caller

__all__ = ["parse_decision_no"]


class LearnedFrom(enum.StrEnum):
    """Which event made a decision payable here (R-PAY-1)."""

    HANDLED = "handled"  # issued by adjudication (online or counter handling)
    RECORDED = "recorded"  # an on-site or general-procedure decision recorded as decided


class PaymentStatus(enum.StrEnum):
    """A decision's state as far as paying it goes."""

    UNPAID = "unpaid"
    IN_PROGRESS = "payment_in_progress"
    PAID = "paid"


@dataclass(frozen=True)
class Decision:
    decision_no: str
    violation_id: str
    decision_date: date
    fine_fen: int
    points: int
    #: the person the decision is against: the handler, else the licence holder, else the
    #: vehicle's owner; None while the registry copy does not know them yet
    party_person_id: str | None
    vehicle_id: str
    licence_id: str | None
    plate_number: str | None
    violation_code: str | None
    description_zh: str | None
    occurred_at: datetime | None
    place: str | None
    disputed: bool
    learned_from: str

    @property
    def authority_code(self) -> str:
        """The issuing authority's 6-digit division code."""
        return self.decision_no[:6]

    @property
    def party_known(self) -> bool:
        """Whom the decision is against is known (the registry copy may trail the decision:
        registry events travel on other topics). Until then the decision is not shown or
        paid: the party would see themselves masked, and a counter payment would not know
        whose it is."""
        return self.party_person_id is not None

    @property
    def payable_here(self) -> bool:
        """R-PAY-1: only Chongqing decisions (division code ``50....``) are paid here."""
        return self.decision_no.startswith(CHONGQING_PROVINCE_CODE)


@dataclass(frozen=True)
class ViolationFacts:
    """What ``ViolationRecorded`` says about a violation, kept so a decision issued later
    (``ViolationHandled`` carries only the decision) can show them."""

    violation_id: str
    vehicle_id: str
    licence_id: str | None
    plate_number: str
    violation_code: str
    description_zh: str
    occurred_at: datetime
    place: str
    fine_fen: int
    points: int


def is_own(decision: Decision, caller: Caller) -> bool:
    """The party themselves (by registry person) or staff see the decision whole (R-Q-4,
    the query service's rule)."""
    return sees_in_full(
        subject_person_id=decision.party_person_id,
        caller_person_id=caller.person_id,
        is_staff=caller.is_staff,
    )


def shown_party(decision: Decision, *, party_name: str | None, caller: Caller) -> tuple[str, str]:
    """The party's name and plate as this caller may see them (R-Q-4): whole for the party
    and staff, masked (``张*``, ``渝A***45``) for anyone else."""
    name = party_name or ""
    plate = decision.plate_number or ""
    if is_own(decision, caller):
        return name, plate
    return mask_name(name), mask_plate(plate)


@dataclass(frozen=True)
class DecisionView:
    """A decision as one caller sees it today (``PayableDecision`` on the wire)."""

    decision: Decision
    amount: AmountDue
    status: PaymentStatus
    own: bool
    party_name: str
    plate_number: str

    @property
    def not_payable_code(self) -> str:
        return "" if self.decision.payable_here else DECISION_NOT_PAYABLE_HERE.code


def view_decision(
    decision: Decision,
    *,
    party_name: str | None,
    caller: Caller,
    status: PaymentStatus,
    today: date,
) -> DecisionView:
    """Price ``decision`` for ``today`` (R-PAY-2) and mask what the caller may not see."""
    name, plate = shown_party(decision, party_name=party_name, caller=caller)
    return DecisionView(
        decision=decision,
        amount=amount_due(decision.fine_fen, decision.decision_date, today),
        status=status,
        own=is_own(decision, caller),
        party_name=name,
        plate_number=plate,
    )
