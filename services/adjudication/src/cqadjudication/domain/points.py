"""Each licence's points ledger (R-ADJ-5, R-ADJ-6, R-X-1/2), pure.

One row per licence holds the points of its current scoring cycle (``cqcommon.scoring``:
12 months from the first-issue anniversary); every change is an append-only entry
(delta, points after, channel, violation), so the row always equals the sum of its
entries. The registry's ``DriverRegistered.points`` opens the ledger (channel
``registry``); a later import with different points is a change by another channel, as
are counter decisions and other provinces: they stamp ``external_change_at``, which the
R-ADJ-6 sync guard reads. Online handlings do not.

Adding points for a handling checks the limit again under the row lock (R-ADJ-5); the
counter keeps the limit too; an enforcement system's decision is a legal fact and is
booked whatever the total.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from cqcommon.errors import POINTS_LIMIT_EXCEEDED, DomainError
from cqcommon.scoring import cycle_on

Channel = Literal["online", "counter", "other_province", "registry"]
#: The channel whose changes the sync guard does not count (R-ADJ-6).
ONLINE: Channel = "online"


@dataclass(frozen=True)
class LedgerRow:
    licence_id: str
    points: int
    cycle_start: date
    cycle_end: date
    external_change_at: datetime | None


@dataclass(frozen=True)
class PointsEntry:
    licence_id: str
    delta: int
    points_after: int
    channel: Channel
    violation_id: str | None
    cycle_start: date
    at: datetime


def opened(
    licence_id: str, points: int, *, first_issued_on: date, today: date, now: datetime
) -> tuple[LedgerRow, PointsEntry | None]:
    """The ledger of a licence seen for the first time, with the registry's points (not an
    external change: the first import is where the ledger starts)."""
    cycle = cycle_on(first_issued_on, today)
    row = LedgerRow(licence_id, points, cycle.start, cycle.end, None)
    if points == 0:
        return row, None
    return row, PointsEntry(licence_id, points, points, "registry", None, cycle.start, now)


def reimported(
    row: LedgerRow, points: int, *, now: datetime
) -> tuple[LedgerRow, PointsEntry] | None:
    """A registry re-import: the same points change nothing; different points are an
    external change (another channel changed the record)."""
    if points == row.points:
        return None
    return _change(row, points - row.points, "registry", None, now)


def add_points(
    row: LedgerRow,
    points: int,
    *,
    channel: Channel,
    violation_id: str,
    now: datetime,
    limit: int | None,
) -> tuple[LedgerRow, PointsEntry]:
    """Book ``points`` for a violation; ``limit`` (None: no limit) is checked on the locked
    row, so racing handlings never pass it (R-ADJ-5)."""
    if points < 0:
        raise ValueError("a violation adds points, never removes them")
    if limit is not None and row.points + points > limit:
        raise DomainError(
            POINTS_LIMIT_EXCEEDED, details={"points": row.points, "adding": points, "limit": limit}
        )
    return _change(row, points, channel, violation_id, now)


def _change(
    row: LedgerRow, delta: int, channel: Channel, violation_id: str | None, now: datetime
) -> tuple[LedgerRow, PointsEntry]:
    after = max(0, row.points + delta)
    external = row.external_change_at if channel == ONLINE else now
    new_row = dataclasses.replace(row, points=after, external_change_at=external)
    entry = PointsEntry(
        row.licence_id, after - row.points, after, channel, violation_id, row.cycle_start, now
    )
    return new_row, entry
