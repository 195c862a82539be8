"""Use cases of police counters and enforcement systems: handle a violation in person
(``HandleAtCounter``), and record an officer's decision made elsewhere (``RecordDecision``).

At a counter the clerk checks the handler's identity at the desk (the ``counter`` face
adapter records that), the fine and licence-class limits of online handling are lifted,
the sync guard and the vehicle-relation and R-X-2 rules are the clerk's judgement, and the
points limit is kept (API.md). This is how a non-site violation needing the general
procedure gets its decision. Points booked here are a change by another channel (R-ADJ-6).

An enforcement system's decision is a legal fact: it is booked whatever the points total.
Both lock the violation, then the ledger row (the submit's order).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from cqcommon.clock import FixedClock
from cqcommon.errors import (
    ALREADY_DECIDED,
    ALREADY_HANDLED,
    DECISION_INCOMPLETE,
    DECISION_NO_CONFLICT,
    HANDLING_IDENTITY_UNAVAILABLE,
    LICENCE_NOT_FOUND,
    VERIFICATION_FAILED,
    VIOLATION_NOT_FOUND,
    DomainError,
)
from cqcommon.fees import due_date
from cqcommon.identifiers import parse_decision_no
from cqcommon.text import check_text

from cqadjudication.domain.callers import Caller, require_staff
from cqadjudication.domain.decisions import issue
from cqadjudication.domain.eligibility import (
    ALREADY_DECIDED as ALREADY_DECIDED_REASON,
)
from cqadjudication.domain.eligibility import (
    ALREADY_PAID,
    DISPUTED_COUNTER_ONLY,
    LICENCE_NOT_VALID_COUNTER_ONLY,
    POINTS_LIMIT_EXCEEDED,
    CycleUsage,
    HandlerLicence,
    assess,
)
from cqadjudication.domain.handlings import Decision, Handling, VerificationStep
from cqadjudication.domain.violations import Violation, check_decision
from cqadjudication.ports import FaceVerifier, UnitOfWork
from cqadjudication.service_layer.booking import book_decision
from cqadjudication.service_layer.config import HandlingConfig
from cqadjudication.service_layer.facts import new_decision_no
from cqadjudication.service_layer.handlings import new_uuid

#: The online rules a counter keeps: a decided or paid record has nothing to handle, a
#: dispute is cleared first (UndisputeViolation, audited), a licence that is not valid
#: takes no points, and the points limit holds at the counter too.
COUNTER_KEEPS = frozenset(
    r.code
    for r in (
        DISPUTED_COUNTER_ONLY,
        ALREADY_DECIDED_REASON,
        ALREADY_PAID,
        LICENCE_NOT_VALID_COUNTER_ONLY,
        POINTS_LIMIT_EXCEEDED,
    )
)


def _licence_no(raw: str) -> str:
    check_text(raw, field="licence_no")
    return raw.strip().upper()


async def handle_at_counter(
    *,
    uow: UnitOfWork,
    verifier: FaceVerifier,
    caller: Caller,
    violation_id: str,
    licence_no: str,
    config: HandlingConfig,
    now: datetime,
    new_id: Callable[[], str] = new_uuid,
) -> Handling:
    """Handle ``violation_id`` in person for the holder of ``licence_no``: a submitted
    ``counter`` handling with its decision; the same call again returns it."""
    staff_id = require_staff(caller)
    number = _licence_no(licence_no)
    violation = await uow.violations.lock(violation_id)
    if violation is None:
        raise DomainError(VIOLATION_NOT_FOUND)
    licence = await uow.points.licence_by_no(number)
    if licence is None:
        raise DomainError(LICENCE_NOT_FOUND, details={"field": "licence_no"})
    existing = await uow.handlings.submitted_for(violation.violation_id)
    if existing is not None:
        if existing.route == "counter" and existing.handler_licence_id == licence.licence_id:
            return existing  # the clerk's retried call
        raise DomainError(ALREADY_HANDLED)
    locked = await uow.points.lock_licence(licence.licence_id)
    row = locked[0] if locked is not None else None
    licence = locked[1] if locked is not None else licence
    owner = (await uow.violations.owners([violation.vehicle_id])).get(violation.vehicle_id, "")
    assessment = assess(
        violation=violation,
        owner_person_id=owner,
        handler_person_id=licence.person_id,
        licence=licence,
        relation="owner" if owner == licence.person_id else "none",
        usage=CycleUsage(),
        now=now,
        rules=config.rules,
    )
    kept = [r for r in assessment.reasons if r.code in COUNTER_KEEPS]
    if kept:
        raise DomainError(
            kept[0].spec, details={"reasons": [r.as_dict() for r in kept], "route": ""}
        )
    subject = await uow.handlings.subject(licence.person_id)
    if subject is None:
        raise DomainError(HANDLING_IDENTITY_UNAVAILABLE, details={"step": "handler"})
    verification_id = new_id()
    started = await verifier.start(
        subject, purpose="窗口现场处理交通违法", reference=verification_id
    )
    if await verifier.result(started.certify_id) != "passed":
        raise DomainError(VERIFICATION_FAILED, details={"step": "handler"})
    handling_id = new_id()
    decision = issue(violation, await new_decision_no(uow, config.authority_code), now=now)
    await book_decision(
        uow,
        violation,
        decision,
        licence=licence,
        handling_id=handling_id,
        channel="counter",
        limit=config.rules.points_limit,
        now=now,
        row=row,
    )
    handling = Handling(
        handling_id=handling_id,
        violation_id=violation.violation_id,
        vehicle_id=violation.vehicle_id,
        handler_person_id=licence.person_id,
        handler_licence_id=licence.licence_id,
        route="counter",
        relation="owner" if owner == licence.person_id else "none",
        state="submitted",
        steps=(
            VerificationStep(
                verification_id=verification_id,
                step="handler",
                person_id=licence.person_id,
                person_name=subject.name,
                adapter=verifier.name,
                certify_id=started.certify_id,
                url=started.url,
                status="passed",
                started_at=now,
                passed_at=now,
                expires_at=now + config.face_ttl,
                used_at=now,
            ),
        ),
        created_at=now,
        decision=decision,
        staff_id=staff_id,
    )
    await uow.handlings.add(handling)
    await uow.commit()
    return handling


async def record_decision(
    *,
    uow: UnitOfWork,
    caller: Caller,
    violation_id: str,
    decision_no: str,
    decision_date: date | None,
    licence_no: str,
    now: datetime,
) -> Violation:
    """Record an officer's decision on an undecided violation; the same decision again
    returns the violation unchanged. Points go on ``licence_no`` (required when the
    violation bears points)."""
    require_staff(caller)
    number = parse_decision_no(decision_no)
    if decision_date is None:
        raise DomainError(DECISION_INCOMPLETE, details={"field": "decision_date"})
    violation = await uow.violations.lock(violation_id)
    if violation is None:
        raise DomainError(VIOLATION_NOT_FOUND)
    if violation.decision_no == number and violation.decision_date == decision_date:
        return violation  # a replay
    if violation.status != "unhandled" or violation.decision_no is not None:
        raise DomainError(ALREADY_DECIDED)
    if await uow.handlings.submitted_for(violation.violation_id) is not None:
        raise DomainError(ALREADY_HANDLED)
    check_decision(
        number,
        decision_date,
        source=violation.source,
        occurred_at=violation.occurred_at,
        clock=FixedClock(now),
    )
    if await uow.violations.decision_no_taken(number):
        raise DomainError(DECISION_NO_CONFLICT, details={"field": "decision_no"})
    licence: HandlerLicence | None = None
    if licence_no.strip():
        licence = await uow.points.licence_by_no(_licence_no(licence_no))
        if licence is None:
            raise DomainError(LICENCE_NOT_FOUND, details={"field": "licence_no"})
    elif violation.points > 0:
        raise DomainError(LICENCE_NOT_FOUND, details={"field": "licence_no"})
    decision = Decision(
        decision_no=number,
        violation_id=violation.violation_id,
        decision_date=decision_date,
        due_date=due_date(decision_date),
        fine_fen=violation.fine_fen,
        points=violation.points,
    )
    decided = await book_decision(
        uow,
        violation,
        decision,
        licence=licence,
        handling_id="",
        channel="counter",
        limit=None,  # a legal fact: booked whatever the points total
        now=now,
    )
    await uow.commit()
    return decided
