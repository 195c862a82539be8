"""Use cases of the event consumers: payment learns payable decisions from adjudication's
events (R-PAY-1) and keeps the small registry copy a decision shows.

- ``ViolationRecorded``: the violation's facts are kept; when it carries a decision number
  (an on-site or general-procedure decision), that decision becomes payable, against the
  licence's holder when the record names a licence, else the vehicle's owner.
- ``ViolationHandled``: a decision issued by adjudication (online or at a counter), against
  the handler, with the facts kept from the record.
- ``ViolationDisputed`` / ``ViolationUndisputed``: the violation and its decision, if any,
  are (no longer) disputed (R-ADJ-9: no payment while disputed).

Every write is an upsert by id, so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from cqpayment.domain.decisions import Decision, LearnedFrom, ViolationFacts
from cqpayment.ports import DecisionCopy


async def learn_recorded(
    copy: DecisionCopy,
    facts: ViolationFacts,
    *,
    decision_no: str | None,
    decision_date: date | None,
    now: datetime,
) -> None:
    await copy.upsert_violations([facts], now=now)
    if not decision_no or decision_date is None:
        return  # not decided yet: ViolationHandled will bring the decision
    if facts.licence_id:
        party = await copy.licence_holder(facts.licence_id)
    else:
        party = await copy.vehicle_owner(facts.vehicle_id)
    known = await copy.violation(facts.violation_id)
    await copy.upsert_decision(
        Decision(
            decision_no=decision_no,
            violation_id=facts.violation_id,
            decision_date=decision_date,
            fine_fen=facts.fine_fen,
            points=facts.points,
            party_person_id=party,
            vehicle_id=facts.vehicle_id,
            licence_id=facts.licence_id,
            plate_number=facts.plate_number,
            violation_code=facts.violation_code,
            description_zh=facts.description_zh,
            occurred_at=facts.occurred_at,
            place=facts.place,
            disputed=known[1] if known else False,
            learned_from=LearnedFrom.RECORDED.value,
        ),
        now=now,
    )


@dataclass(frozen=True)
class Recorded:
    """One ``ViolationRecorded``: the facts, and the decision it carries if any."""

    facts: ViolationFacts
    decision_no: str | None = None
    decision_date: date | None = None

    @property
    def decided(self) -> bool:
        return bool(self.decision_no) and self.decision_date is not None


async def learn_recorded_many(
    copy: DecisionCopy, recorded: Sequence[Recorded], *, now: datetime
) -> None:
    """A run of recordings in their order, with the same outcome as
    :func:`learn_recorded` one by one: the facts of consecutive undecided ones are kept
    at once (most records of a day: camera records without a decision), each decided one
    on its own between them."""
    undecided: list[ViolationFacts] = []
    for r in recorded:
        if not r.decided:
            undecided.append(r.facts)
            continue
        if undecided:
            await copy.upsert_violations(undecided, now=now)
            undecided = []
        await learn_recorded(
            copy, r.facts, decision_no=r.decision_no, decision_date=r.decision_date, now=now
        )
    if undecided:
        await copy.upsert_violations(undecided, now=now)


async def learn_handled(
    copy: DecisionCopy,
    *,
    violation_id: str,
    decision_no: str,
    decision_date: date,
    fine_fen: int,
    points: int,
    handler_person_id: str,
    handler_licence_id: str,
    vehicle_id: str,
    now: datetime,
) -> None:
    known = await copy.violation(violation_id)
    facts, disputed = known if known else (None, False)
    await copy.upsert_decision(
        Decision(
            decision_no=decision_no,
            violation_id=violation_id,
            decision_date=decision_date,
            fine_fen=fine_fen,
            points=points,
            party_person_id=handler_person_id or None,
            vehicle_id=vehicle_id or (facts.vehicle_id if facts else ""),
            licence_id=handler_licence_id or None,
            plate_number=facts.plate_number if facts else None,
            violation_code=facts.violation_code if facts else None,
            description_zh=facts.description_zh if facts else None,
            occurred_at=facts.occurred_at if facts else None,
            place=facts.place if facts else None,
            disputed=disputed,
            learned_from=LearnedFrom.HANDLED.value,
        ),
        now=now,
    )


async def learn_disputed(
    copy: DecisionCopy, *, violation_id: str, disputed: bool, now: datetime
) -> None:
    await copy.set_disputed(violation_id, disputed, now=now)
