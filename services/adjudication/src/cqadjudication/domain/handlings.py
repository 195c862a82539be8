"""Handlings (处理) as the domain sees them: a person's attempt to handle one violation, its
face-verification steps and the state machine they drive (R-ADJ-1, 3, 4, 8), pure.

States: ``awaiting_verification`` -> ``verified`` (every step passed) -> ``submitted``
(the decision is issued). A ``failed`` answer is recorded on its step but is not final
(Alipay answers "F" until the person passes; ``domain.verification``), so the handling
waits for a pass; ``failed`` as a handling state is kept for a handling ended otherwise. The steps follow the route the eligibility engine chose: ``handler``
(R-ADJ-1/3) is the handler's face alone; ``owner_then_handler`` (R-ADJ-4) is the owner's
face (consent to points on another's licence) and then the handler's, in that order; a
``counter`` handling has one ``handler`` step the clerk confirmed at the desk.

A passed verification is bound to its handling and its person, expires
(``face_verification_ttl_s`` after it passed) and is used once: the rules are
``domain.verification``'s (``record_result``, ``usable_for``), applied to each step;
submitting checks every step and marks them used in the same transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from cqcommon.errors import (
    HANDLING_OWNER_STEP_FIRST,
    HANDLING_STEP_UNKNOWN,
    VERIFICATION_FAILED,
    VERIFICATION_NOT_FOUND,
    DomainError,
)

from cqadjudication.domain import verification as face
from cqadjudication.domain.eligibility import Relation
from cqadjudication.domain.verification import FaceResult, Step

HandlingState = Literal["awaiting_verification", "verified", "submitted", "failed"]
HandlingRoute = Literal["handler", "owner_then_handler", "counter"]
#: A step as stored: what the adapter last said.
StepStatus = Literal["pending", "passed", "failed"]
#: A step as shown (VerificationStep.status): a passed one may since have expired or been used.
ShownStatus = Literal["pending", "passed", "failed", "expired", "used"]

STEPS_OF_ROUTE: dict[HandlingRoute, tuple[Step, ...]] = {
    "handler": ("handler",),
    "owner_then_handler": ("owner", "handler"),
    "counter": ("handler",),
}


@dataclass(frozen=True)
class Decision:
    """A penalty decision (R-ADJ-7) as a handling shows it; due 15 days after (R-PAY-2)."""

    decision_no: str
    violation_id: str
    decision_date: date
    due_date: date
    fine_fen: int
    points: int


@dataclass(frozen=True)
class VerificationStep:
    """One started face verification of a handling (one row of ``verifications``)."""

    verification_id: str
    step: Step
    person_id: str
    person_name: str
    adapter: str
    certify_id: str
    url: str
    status: StepStatus
    started_at: datetime
    passed_at: datetime | None = None
    expires_at: datetime | None = None
    used_at: datetime | None = None

    def shown_status(self, now: datetime) -> ShownStatus:
        if self.used_at is not None:
            return "used"
        if self.status == "passed" and self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return self.status

    def as_verification(self, handling_id: str) -> face.Verification:
        """This step as the face-verification record the R-ADJ-8 rules judge."""
        return face.Verification(
            certify_id=self.certify_id,
            handling_id=handling_id,
            step=self.step,
            person_id=self.person_id,
            adapter=self.adapter,
            status=self.status,
            url=self.url,
            started_at=self.started_at,
            passed_at=self.passed_at,
            expires_at=self.expires_at,
            used_at=self.used_at,
        )

    def judged(self, v: face.Verification) -> VerificationStep:
        """This step with the status and times of ``v`` (the rules' answer)."""
        return dataclasses.replace(
            self,
            status=v.status,
            passed_at=v.passed_at,
            expires_at=v.expires_at,
            used_at=v.used_at,
        )


@dataclass(frozen=True)
class Handling:
    handling_id: str
    violation_id: str
    vehicle_id: str
    handler_person_id: str
    handler_licence_id: str
    route: HandlingRoute
    relation: Relation
    state: HandlingState
    steps: tuple[VerificationStep, ...]
    created_at: datetime
    decision: Decision | None = None
    staff_id: str | None = None

    def step(self, step: str) -> VerificationStep:
        for s in self.steps:
            if s.step == step:
                return s
        raise DomainError(HANDLING_STEP_UNKNOWN, details={"step": step})

    def expected_person(self, step: Step, *, owner_person_id: str) -> str:
        """Whose face ``step`` must be: the owner's for ``owner``, else the handler's."""
        return owner_person_id if step == "owner" else self.handler_person_id


def check_can_complete(handling: Handling, step_name: str) -> bool:
    """Whether the adapter should be asked about ``step_name`` now: False when there is
    nothing to ask (the step already passed, or the handling moved on); raises for an
    unknown step, a failed handling, or a handler step asked before the owner's passed."""
    step = handling.step(step_name)
    if handling.state == "failed":
        raise DomainError(VERIFICATION_FAILED, details={"handling_id": handling.handling_id})
    if handling.state != "awaiting_verification" or step.status == "passed":
        return False
    for earlier in handling.steps:
        if earlier.step == step.step:
            break
        if earlier.status != "passed":
            raise DomainError(HANDLING_OWNER_STEP_FIRST, details={"step": step.step})
    return True


def record_result(
    handling: Handling, step_name: str, result: FaceResult, *, now: datetime, ttl: timedelta
) -> Handling:
    """The handling after the adapter answered ``result`` for ``step_name``.

    Only an ``awaiting_verification`` handling changes; asking again about a step that
    already passed answers the handling unchanged (a retried call). The owner's step must
    pass before the handler's (R-ADJ-4). ``failed`` ends the handling.
    """
    if not check_can_complete(handling, step_name):
        return handling
    step = handling.step(step_name)
    new_step = step.judged(
        face.record_result(step.as_verification(handling.handling_id), result, now=now, ttl=ttl)
    )
    steps = tuple(new_step if s.step == step.step else s for s in handling.steps)
    state: HandlingState = (
        "verified" if all(s.status == "passed" for s in steps) else "awaiting_verification"
    )
    return dataclasses.replace(handling, steps=steps, state=state)


def check_submittable(handling: Handling, *, owner_person_id: str, now: datetime) -> None:
    """Every step passed, for its own person, unexpired and unused (R-ADJ-8); raises the
    first problem (the step in its details)."""
    if handling.state == "failed":
        raise DomainError(VERIFICATION_FAILED, details={"handling_id": handling.handling_id})
    for step in handling.steps:
        problem = face.usable_for(
            step.as_verification(handling.handling_id),
            handling.handling_id,
            handling.expected_person(step.step, owner_person_id=owner_person_id),
            now,
            step=step.step,
        )
        if problem is not None:
            # another person's face reads like a missing one (nothing about it leaves here)
            details = {} if problem is VERIFICATION_NOT_FOUND else {"step": step.step}
            raise DomainError(problem, details=details)


def submitted(handling: Handling, decision: Decision, *, now: datetime) -> Handling:
    """The handling once its decision is issued: submitted, every verification used."""
    steps = tuple(
        s.judged(
            face.consume(
                s.as_verification(handling.handling_id),
                handling.handling_id,
                s.person_id,
                now,
                step=s.step,
            )
        )
        for s in handling.steps
    )
    return dataclasses.replace(handling, state="submitted", steps=steps, decision=decision)
