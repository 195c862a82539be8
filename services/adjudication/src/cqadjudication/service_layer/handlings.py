"""Use cases of online handling (R-ADJ-1..9, R-X-2): start a handling, complete one of its
face-verification steps, submit it, read it.

Submitting is one transaction: the handling, the violation and the handler's points
ledger row are locked in that order (every path that locks two of them uses the same
order, so they never deadlock), the rules are assessed again with fresh facts, the points
are added under the lock (R-ADJ-5), the decision is issued (R-ADJ-7), the verifications
are used up (R-ADJ-8) and ``ViolationHandled`` + ``PointsChanged`` reach the outbox with
the change. A retried submit returns the first decision; a second handling of a handled
violation is ``ALREADY_HANDLED`` (the database's unique index backs this up).

A handling is read only by the person who started it: another person's handling and an
unknown id are the same ``HANDLING_NOT_FOUND`` from the same query.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import cast

from cqcommon.errors import (
    ALREADY_HANDLED,
    FACE_PROVIDER_UNAVAILABLE,
    HANDLING_IDENTITY_UNAVAILABLE,
    HANDLING_NOT_FOUND,
    VIOLATION_NOT_FOUND,
    DomainError,
)

from cqadjudication.domain.alerts import AlertCase, alerts_for
from cqadjudication.domain.callers import Caller
from cqadjudication.domain.decisions import issue
from cqadjudication.domain.eligibility import (
    Assessment,
    CycleUsage,
    HandlerLicence,
    Relation,
    assess,
    needs_cycle_usage,
)
from cqadjudication.domain.handlings import (
    STEPS_OF_ROUTE,
    Handling,
    HandlingRoute,
    VerificationStep,
    check_can_complete,
    check_submittable,
    record_result,
    submitted,
)
from cqadjudication.domain.verification import Step
from cqadjudication.domain.violations import Violation
from cqadjudication.ports import FaceVerifier, Relations, UnitOfWork
from cqadjudication.service_layer.booking import book_decision
from cqadjudication.service_layer.config import HandlingConfig
from cqadjudication.service_layer.facts import (
    new_decision_no,
    own_licence,
    relation_at_submit,
    relations_for,
)

#: What the person is told the face check is for (shown by the provider).
PURPOSES: dict[Step, str] = {
    "owner": "机动车所有人同意由他人处理交通违法并记分",
    "handler": "本人处理交通违法",
}


def new_uuid() -> str:
    """A random id (it leaves the system: nothing about a person in it)."""
    return str(uuid.uuid4())


async def _record_alerts(
    uow: UnitOfWork,
    assessment: Assessment,
    usage: CycleUsage,
    licence: HandlerLicence | None,
    violation: Violation,
    *,
    now: datetime,
    new_id: Callable[[], str],
) -> None:
    """R-X-2: staff see refused points-buying attempts. Committed on its own, before the
    refusal is raised (which rolls back anything else)."""
    if licence is None:
        return
    case = AlertCase(
        licence_id=licence.licence_id,
        vehicle_id=violation.vehicle_id,
        cycle_start=licence.cycle_start,
        violation_id=violation.violation_id,
        handler_person_id=licence.person_id,
    )
    alerts = alerts_for(assessment, usage, case, now=now, new_id=new_id)
    if alerts:
        for alert in alerts:
            await uow.alerts.add(alert)
        await uow.commit()


async def _assess_or_refuse(
    uow: UnitOfWork,
    violation: Violation,
    *,
    owner_person_id: str,
    handler_person_id: str,
    licence: HandlerLicence | None,
    relation: Relation,
    config: HandlingConfig,
    now: datetime,
    new_id: Callable[[], str],
) -> Assessment:
    """Assess the handler for ``violation`` with the licence's usage this cycle; refused ->
    the R-X-2 alerts are recorded and the first reason's error (every reason in its
    details) is raised."""
    usage = CycleUsage()
    if licence is not None and needs_cycle_usage(
        violation, owner_person_id=owner_person_id, handler_person_id=handler_person_id
    ):
        usage = (await uow.points.usage(licence, [violation.vehicle_id]))[violation.vehicle_id]
    assessment = assess(
        violation=violation,
        owner_person_id=owner_person_id,
        handler_person_id=handler_person_id,
        licence=licence,
        relation=relation,
        usage=usage,
        now=now,
        rules=config.rules,
    )
    if not assessment.allowed:
        await _record_alerts(uow, assessment, usage, licence, violation, now=now, new_id=new_id)
        raise assessment.refusal()
    return assessment


async def start_handling(
    *,
    uow: UnitOfWork,
    relations: Relations,
    verifier: FaceVerifier,
    caller: Caller,
    violation_id: str,
    config: HandlingConfig,
    now: datetime,
    new_id: Callable[[], str] = new_uuid,
) -> Handling:
    """Assess the caller for the violation; refused -> the first reason's error with every
    reason (and the route) in its details; allowed -> a handling with its face steps
    started (``handler``, or ``owner`` then ``handler``)."""
    violation = await uow.violations.get(violation_id)
    if violation is None:
        raise DomainError(VIOLATION_NOT_FOUND)
    owner = (await uow.violations.owners([violation.vehicle_id])).get(violation.vehicle_id, "")
    licence = None
    if caller.person_id:
        licence = own_licence(
            await uow.points.licence_of_person(caller.person_id), caller.person_id
        )
    relation = (await relations_for(relations, caller, {violation.vehicle_id: owner}))[
        violation.vehicle_id
    ]
    on_own_licence = licence is not None and violation.licence_id == licence.licence_id
    if relation == "none" and not on_own_licence:
        # R-Q-1: a violation the caller may not see answers like one that does not exist.
        raise DomainError(VIOLATION_NOT_FOUND)
    assessment = await _assess_or_refuse(
        uow,
        violation,
        owner_person_id=owner,
        handler_person_id=caller.person_id,
        licence=licence,
        relation=relation,
        config=config,
        now=now,
        new_id=new_id,
    )
    assert licence is not None  # NO_LICENCE refuses otherwise
    route = cast(HandlingRoute, assessment.route)
    handling_id = new_id()
    steps: list[VerificationStep] = []
    for step in STEPS_OF_ROUTE[route]:
        person_id = owner if step == "owner" else caller.person_id
        subject = await uow.handlings.subject(person_id)
        if subject is None:
            raise DomainError(HANDLING_IDENTITY_UNAVAILABLE, details={"step": step})
        verification_id = new_id()
        started = await verifier.start(subject, purpose=PURPOSES[step], reference=verification_id)
        steps.append(
            VerificationStep(
                verification_id=verification_id,
                step=step,
                person_id=person_id,
                person_name=subject.name,
                adapter=verifier.name,
                certify_id=started.certify_id,
                url=started.url,
                status="pending",
                started_at=now,
            )
        )
    handling = Handling(
        handling_id=handling_id,
        violation_id=violation.violation_id,
        vehicle_id=violation.vehicle_id,
        handler_person_id=caller.person_id,
        handler_licence_id=licence.licence_id,
        route=route,
        relation=relation,
        state="awaiting_verification",
        steps=tuple(steps),
        created_at=now,
    )
    await uow.handlings.add(handling)
    await uow.commit()
    return handling


async def _mine(uow: UnitOfWork, caller: Caller, handling_id: str, *, lock: bool) -> Handling:
    handling = await uow.handlings.get(handling_id, caller.person_id, for_update=lock)
    if handling is None or not caller.person_id:
        raise DomainError(HANDLING_NOT_FOUND)
    return handling


async def get_handling(*, uow: UnitOfWork, caller: Caller, handling_id: str) -> Handling:
    return await _mine(uow, caller, handling_id, lock=False)


async def complete_verification(
    *,
    uow: UnitOfWork,
    verifiers: Mapping[str, FaceVerifier],
    caller: Caller,
    handling_id: str,
    step: str,
    config: HandlingConfig,
    now: datetime,
) -> Handling:
    """Ask the face adapter about ``step`` and record its answer (R-ADJ-8). The owner's
    step must pass before the handler's (R-ADJ-4). The result is asked of the adapter that
    started the step (``verifiers`` by name)."""
    handling = await _mine(uow, caller, handling_id, lock=True)
    if not check_can_complete(handling, step):
        return handling  # already passed, or the handling moved on: nothing to ask
    started = handling.step(step)
    verifier = verifiers.get(started.adapter)
    if verifier is None:  # e.g. sandbox mode switched off since the step started
        raise DomainError(FACE_PROVIDER_UNAVAILABLE, details={"step": step})
    result = await verifier.result(started.certify_id)
    after = record_result(handling, step, result, now=now, ttl=config.face_ttl)
    if after != handling:
        await uow.handlings.save(after, now=now)
        await uow.commit()
    return after


async def submit_handling(
    *,
    uow: UnitOfWork,
    caller: Caller,
    handling_id: str,
    config: HandlingConfig,
    now: datetime,
    new_id: Callable[[], str] = new_uuid,
) -> Handling:
    """Apply a verified handling: decision, points and events in one transaction."""
    handling = await _mine(uow, caller, handling_id, lock=True)
    if handling.state == "submitted":
        return handling  # a retried submit: the first decision (R-ADJ-5)
    violation = await uow.violations.lock(handling.violation_id)
    if violation is None:
        raise DomainError(HANDLING_NOT_FOUND)
    if await uow.handlings.submitted_for(violation.violation_id) is not None:
        raise DomainError(ALREADY_HANDLED)
    owner = (await uow.violations.owners([violation.vehicle_id])).get(violation.vehicle_id, "")
    check_submittable(handling, owner_person_id=owner, now=now)
    locked = await uow.points.lock_licence(handling.handler_licence_id)
    row, stored = locked if locked is not None else (None, None)
    licence = own_licence(stored, handling.handler_person_id)
    await _assess_or_refuse(
        uow,
        violation,
        owner_person_id=owner,
        handler_person_id=handling.handler_person_id,
        licence=licence,
        # The relation the handling started with (follows and proofs are the query
        # service's; asking again here would hold the locks over a network call);
        # ownership is re-read.
        relation=relation_at_submit(handling.handler_person_id, owner, handling.relation),
        config=config,
        now=now,
        new_id=new_id,
    )
    assert licence is not None and row is not None  # NO_LICENCE refuses otherwise
    decision = issue(violation, await new_decision_no(uow, config.authority_code), now=now)
    await book_decision(
        uow,
        violation,
        decision,
        licence=licence,
        handling_id=handling.handling_id,
        channel="online",
        limit=config.rules.points_limit,
        now=now,
        row=row,
    )
    done = submitted(handling, decision, now=now)
    await uow.handlings.save(done, now=now)
    await uow.commit()
    return done
