"""What the query use cases answer: plain values, already decided and masked for the
caller (R-Q-1, R-Q-3, R-Q-4, R-X-1); ``entrypoints.mappers`` only turns them into
protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from cqcommon import scoring
from cqcommon.decided import decided_answer
from cqcommon.identifiers import mask_id_number

from cqquery.domain.access import Relation
from cqquery.domain.amounts import AmountView, amount_view
from cqquery.domain.cursor import Position
from cqquery.domain.masking import (
    Person,
    mask_file_no,
    mask_vin,
    person_or_none,
    sees_in_full,
)
from cqquery.domain.model import LicenceRow, VehicleRow, ViolationRow
from cqquery.domain.online_handling import Reason


@dataclass(frozen=True)
class ViolationShown:
    """A violation with what it costs today (R-Q-3 / R-PAY-2)."""

    row: ViolationRow
    amounts: AmountView


def violation_shown(row: ViolationRow, *, today: date) -> ViolationShown:
    amounts = amount_view(
        status=row.status, fine_fen=row.fine_fen, decision_date=row.decision_date, today=today
    )
    return ViolationShown(row, amounts)


Availability = Literal["unspecified", "allowed", "refused", "unknown"]


@dataclass(frozen=True)
class OnlineHandlingHint:
    """Adjudication's answer to "may this caller handle it online" (R-Q-3), relayed.

    ``reasons``: every failing rule when refused (``reason_*`` repeat the first one).
    """

    availability: Availability
    route: str = ""
    reason_code: str = ""
    reason_zh: str = ""
    reason_en: str = ""
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def unknown(cls, reason: Reason) -> OnlineHandlingHint:
        return cls("unknown", "", reason.code, reason.zh, reason.en, (reason,))

    @classmethod
    def decided(cls, status: str, *, disputed: bool) -> OnlineHandlingHint | None:
        """A handled or paid violation's hint, from the row shown beside it: the answer
        adjudication gives every caller about a decided violation (``cqcommon.decided``),
        so reading one asks adjudication nothing. None while the violation is open."""
        answer = decided_answer(status, disputed=disputed)
        if answer is None:
            return None
        reasons = tuple(Reason.of(spec) for spec in answer.reasons)
        first = reasons[0]
        return cls("refused", answer.route, first.code, first.zh, first.en, reasons)

    @property
    def definite(self) -> bool:
        """Allowed or refused. ``unknown`` (adjudication could not be asked, or could not
        decide now) is transient: never kept, the next read asks again."""
        return self.availability in ("allowed", "refused")


@dataclass(frozen=True)
class ViolationDetail:
    violation: ViolationShown
    online_handling: OnlineHandlingHint | None  # None for staff (no online handling)


@dataclass(frozen=True)
class PageItem:
    """What a list's hint needs of one item of a rendered page: whose vehicle it is on, and
    whether it is decided (a decided one's hint is its record's, ``OnlineHandlingHint.decided``)."""

    violation_id: str
    vehicle_id: str
    status: str
    disputed: bool


@dataclass(frozen=True)
class RenderedPage:
    """A page as cached and shared by every caller who may see the subject: the
    violations in their wire form (opaque here) and the *unsigned* next position."""

    body: bytes
    next_position: Position | None


@dataclass(frozen=True)
class ListPage:
    """A page as answered to one caller: the rendered violations (for a user, each with
    their online-handling hint, R-Q-3) and a cursor signed for that caller and that list
    ("" on the last page)."""

    body: bytes
    next_cursor: str


@dataclass(frozen=True)
class VehicleShown:
    vehicle: VehicleRow  # masked unless the caller's own or staff (R-Q-4)
    relation: Relation


@dataclass(frozen=True)
class LicenceShown:
    licence: LicenceRow  # masked unless the caller's own or staff (R-Q-4)
    relation: Relation
    dashboard: scoring.PointsDashboard  # R-X-1


def vehicle_shown(
    row: VehicleRow, *, relation: Relation, caller_person_id: str, is_staff: bool
) -> VehicleShown:
    """R-Q-4: the vehicle as this caller may see it (the VIN keeps its last 6)."""
    full = sees_in_full(
        subject_person_id=row.owner_person_id, caller_person_id=caller_person_id, is_staff=is_staff
    )
    seen = replace(
        row,
        vin=row.vin if full else mask_vin(row.vin),
        owner=person_or_none(row.owner, caller_person_id=caller_person_id, is_staff=is_staff),
    )
    return VehicleShown(seen, relation)


def licence_shown(
    row: LicenceRow,
    *,
    relation: Relation,
    caller_person_id: str,
    is_staff: bool,
    today: date,
    points_limit: int,
) -> LicenceShown:
    """R-Q-4 and R-X-1: the licence as this caller may see it, with its points dashboard."""
    full = sees_in_full(
        subject_person_id=row.person_id, caller_person_id=caller_person_id, is_staff=is_staff
    )
    seen = replace(
        row,
        # the licence number is the holder's ID number (R-Q-4)
        licence_no=row.licence_no if full else mask_id_number(row.licence_no),
        file_no=row.file_no if full else mask_file_no(row.file_no),
        holder=person_or_none(row.holder, caller_person_id=caller_person_id, is_staff=is_staff),
    )
    cycle = (
        scoring.ScoringCycle(row.cycle_start, row.cycle_end)
        if row.cycle_start and row.cycle_end
        else None
    )
    board = scoring.dashboard(
        points=row.points,
        licence_status=row.status,
        first_issued_on=row.first_issued_on,
        today=today,
        points_limit=points_limit,
        cycle=cycle,
    )
    return LicenceShown(seen, relation, board)


@dataclass(frozen=True)
class Me:
    """R-Q-1 / R-X-1: the caller's own page (their data unmasked, followed ones masked)."""

    person: Person | None
    vehicles: list[VehicleShown]
    licence: LicenceShown | None
    followed_vehicles: list[VehicleShown]
    followed_licences: list[LicenceShown]


@dataclass(frozen=True)
class Lookup:
    """A proof lookup's or a counter read's answer: the subject and its first page."""

    vehicle: VehicleShown | None
    licence: LicenceShown | None
    page: ListPage
