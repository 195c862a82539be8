"""R-Q-1: who may see a vehicle's or licence's violations.

A user sees their own vehicles and licence, what they follow, and what they proved
(proof grants come with the lookup endpoints). Anything else is reported exactly like
a record that does not exist, so a guessed id reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cqcommon.errors import NOT_FOUND, DomainError

from cqquery.domain.model import AccessFacts, Caller, SubjectAccess, VehicleRelation

Relation = Literal["own", "followed", "proven", "staff"]


@dataclass(frozen=True)
class SubjectFacts:
    """What the read model knows about a vehicle or licence relative to the caller."""

    exists: bool
    owner_person_id: str | None
    followed_by_caller: bool
    proven_by_caller: bool = False


def relation_of(facts: SubjectFacts, *, caller_person_id: str, is_staff: bool) -> Relation | None:
    """How the caller relates to the subject, or None when they may not see it (R-Q-1)."""
    if not facts.exists:
        return None
    if is_staff:
        return "staff"
    if caller_person_id and facts.owner_person_id == caller_person_id:
        return "own"
    if facts.followed_by_caller:
        return "followed"
    if facts.proven_by_caller:
        return "proven"
    return None


def require_visible(relation: Relation | None) -> Relation:
    """The relation, or the same NOT_FOUND a missing record gets (never 403, R-Q-1)."""
    if relation is None:
        raise DomainError(NOT_FOUND)
    return relation


def relation_to(
    facts: AccessFacts, caller: Caller, *, now_s: float, proven: bool = False
) -> Relation | None:
    """R-Q-1 on a subject's cacheable facts: how ``caller`` relates to it at ``now_s``."""
    subject = SubjectFacts(
        facts.exists,
        facts.owner_person_id,
        facts.followed_by(caller.user_id, now_s=now_s),
        proven_by_caller=proven and bool(caller.user_id),
    )
    return relation_of(subject, caller_person_id=caller.person_id, is_staff=caller.is_staff)


def subject_relation(subject: SubjectAccess, *, proven: bool, caller: Caller) -> Relation | None:
    """R-Q-1 on one subject read together with a violation (or for GetRelations)."""
    return relation_of(
        SubjectFacts(
            subject.exists,
            subject.owner_person_id,
            subject.followed_by_caller,
            proven_by_caller=proven and bool(caller.user_id),
        ),
        caller_person_id=caller.person_id,
        is_staff=caller.is_staff,
    )


def violation_relation(
    subjects: tuple[SubjectAccess, SubjectAccess],
    proven: tuple[bool, bool],
    caller: Caller,
) -> Relation | None:
    """A violation is visible through its vehicle or through the licence it is on.

    Both subjects are always decided (no early return), so the work does not depend on
    which one grants access, or on whether either does.
    """
    relations = [
        subject_relation(s, proven=p, caller=caller) for s, p in zip(subjects, proven, strict=True)
    ]
    return next((r for r in relations if r is not None), None)


def handling_relation(relation: Relation | None) -> VehicleRelation | None:
    """A vehicle relation as adjudication weighs it (R-ADJ-1/3/4): staff handle nothing
    online, so "staff" is no relation there."""
    if relation == "own" or relation == "followed" or relation == "proven":
        return relation
    return None
