"""Use case: look a decision up by its number (R-PAY-1/2, R-Q-4). Anyone logged in may
(paying another's fine is allowed); the amount is today's in Asia/Shanghai."""

from __future__ import annotations

from cqcommon.clock import today_in_shanghai
from cqcommon.errors import DECISION_NOT_FOUND, DomainError

from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import DecisionView, parse_decision_no, view_decision
from cqpayment.service_layer.config import Deps


async def get_decision(deps: Deps, *, caller: Caller, decision_no: str) -> DecisionView:
    """INVALID_DECISION_NO for a malformed number, DECISION_NOT_FOUND for an unknown one
    (or one whose party payment does not know yet)."""
    number = parse_decision_no(decision_no)
    now = deps.clock.now()
    async with deps.uows().reading() as uow:
        decision = await uow.decisions.get(number)
        name = (
            await uow.decisions.party_name(decision.party_person_id)
            if decision is not None and decision.party_person_id
            else None
        )
        if decision is None or name is None:
            # unknown, or its party not (yet) in the registry copy: not shown until it is
            raise DomainError(DECISION_NOT_FOUND)
        status = await uow.decisions.status(number, now)
    return view_decision(
        decision, party_name=name, caller=caller, status=status, today=today_in_shanghai(deps.clock)
    )
