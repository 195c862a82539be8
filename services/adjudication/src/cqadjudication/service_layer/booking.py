"""Booking a decision, the same for every channel that decides a violation (an online
submit, a counter handling, an officer's recorded decision): the violation is decided,
its points go on the handler's ledger with ``PointsChanged`` (R-ADJ-5, R-ADJ-6), and
``ViolationHandled`` is recorded. The caller holds the violation's lock and commits."""

from __future__ import annotations

from datetime import datetime

from cqcommon.errors import LICENCE_NOT_FOUND, DomainError

from cqadjudication.domain.eligibility import HandlerLicence
from cqadjudication.domain.events import PointsChanged, ViolationHandled
from cqadjudication.domain.handlings import Decision
from cqadjudication.domain.points import Channel, LedgerRow, add_points
from cqadjudication.domain.violations import Violation
from cqadjudication.ports import UnitOfWork


async def book_decision(
    uow: UnitOfWork,
    violation: Violation,
    decision: Decision,
    *,
    licence: HandlerLicence | None,
    handling_id: str,
    channel: Channel,
    limit: int | None,
    now: datetime,
    row: LedgerRow | None = None,
) -> Violation:
    """Decide ``violation`` with ``decision``, add its points to ``licence``'s ledger (up
    to ``limit``; ``None``: no limit, a legal fact) and record the events; the decided
    violation. ``row`` is the ledger row when the caller has locked it already (the
    violation, then the ledger row: the one lock order). No licence: no points booked."""
    decided = await uow.violations.decide(violation.violation_id, decision)
    if licence is not None and violation.points > 0:
        if row is None:
            row = await uow.points.lock(licence.licence_id)
        if row is None:  # a licence whose ledger the registry consumer has not opened yet
            raise DomainError(LICENCE_NOT_FOUND, details={"field": "licence_no"})
        new_row, entry = add_points(
            row,
            violation.points,
            channel=channel,
            violation_id=violation.violation_id,
            now=now,
            limit=limit,
        )
        await uow.points.apply(new_row, entry)
        uow.record(
            PointsChanged(
                licence_id=licence.licence_id,
                person_id=licence.person_id,
                delta=entry.delta,
                points_after=entry.points_after,
                cycle_start=new_row.cycle_start,
                cycle_end=new_row.cycle_end,
                channel=channel,
                violation_id=violation.violation_id,
            )
        )
    uow.record(
        ViolationHandled(
            violation=decided,
            decision=decision,
            handling_id=handling_id,
            handler_person_id=licence.person_id if licence else "",
            handler_licence_id=licence.licence_id if licence else "",
            channel=channel,
        )
    )
    return decided
