"""What the query read model holds, as plain values the use cases work with.

Rows come out of the repository (``ports.ReadModel``), are decided on by the domain
(access, masking, amounts) and mapped to protobuf only in ``entrypoints``; none of
them knows about PostgreSQL, Redis or gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from cqquery.domain.masking import Person

#: the two kinds of subject whose violations a caller may list (R-Q-1)
Kind = Literal["vehicle", "licence"]


#: how a user relates to a vehicle for adjudication's R-ADJ-3/4 (R-Q-1's facts; no
#: relation is simply absent)
VehicleRelation = Literal["own", "followed", "proven"]


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the gateway authenticated them (R-USR-1, R-USR-2).

    ``vehicle_relations`` is never taken from a request: a use case fills it with what this
    service knows of the caller's relation to the vehicles of an eligibility question
    (vehicle id, relation), so adjudication gets them with the question and need not ask
    back (R-Q-3; unrelated vehicles are absent).
    """

    user_id: str = ""
    person_id: str = ""
    staff_id: str = ""
    staff_role: str = ""
    vehicle_relations: tuple[tuple[str, VehicleRelation], ...] = ()

    @property
    def is_staff(self) -> bool:
        return bool(self.staff_id)

    def asking_about(self, relations: Mapping[str, VehicleRelation]) -> Caller:
        """This caller with their relations to the vehicles of one question."""
        return replace(self, vehicle_relations=tuple(sorted(relations.items())))


@dataclass(frozen=True)
class ViolationRow:
    violation_id: str
    vehicle_id: str
    plate_type: str
    plate_number: str
    licence_id: str | None
    violation_code: str
    description_zh: str
    occurred_at: datetime
    place: str
    fine_fen: int
    points: int
    source: str
    procedure: str
    status: str
    decision_no: str | None
    decision_date: date | None
    disputed: bool


@dataclass(frozen=True)
class VehicleRow:
    vehicle_id: str
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: str
    vehicle_kind: str
    owner: Person | None
    unhandled_count: int
    unpaid_count: int


@dataclass(frozen=True)
class LicenceRow:
    licence_id: str
    person_id: str
    licence_no: str
    file_no: str
    licence_class: str
    first_issued_on: date
    points: int
    status: str
    cycle_start: date | None
    cycle_end: date | None
    holder: Person | None
    unhandled_count: int
    unpaid_count: int


@dataclass(frozen=True)
class AccessFacts:
    """Who may see a subject, independent of the caller (so one cached copy serves all):
    whether it exists, its owner (or holder) and its active followers."""

    exists: bool
    owner_person_id: str | None
    followers: tuple[tuple[str, float | None], ...]  # (user_id, expires_at epoch or None)

    def followed_by(self, user_id: str, *, now_s: float) -> bool:
        """Whether ``user_id`` follows the subject at ``now_s`` (R-FOL-5: not expired)."""
        return bool(user_id) and any(
            user == user_id and (expires is None or expires > now_s)
            for user, expires in self.followers
        )


#: the facts of a subject that does not exist (and of a detail's missing licence)
NO_SUBJECT = AccessFacts(exists=False, owner_person_id=None, followers=())


@dataclass(frozen=True)
class SubjectAccess:
    """One subject of a violation as seen by one caller: its owner and whether the caller
    follows it now (read together with the violation, in the same statement)."""

    kind: Kind
    subject_id: str
    exists: bool
    owner_person_id: str | None
    followed_by_caller: bool


@dataclass(frozen=True)
class ViolationAccess:
    """A violation (or none) with the access facts of its vehicle and its licence.

    The repository answers this shape whether or not the violation exists, with
    placeholder subjects for a missing one, so both cases take the same path (R-Q-1).
    """

    row: ViolationRow | None
    vehicle: SubjectAccess
    licence: SubjectAccess
