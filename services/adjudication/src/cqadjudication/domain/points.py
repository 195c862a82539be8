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

Scoring-cycle rollover (R-JOB-5, ``rollover``): once a cycle's last day has passed, its
points are cleared if they are below the limit and every fine decided on the licence up to
that day is paid, else they carry into the next cycle. Either way the ledger moves to the
next cycle with entries of channel ``cycle_rollover`` that keep both sums true: a closing
entry in the ended cycle takes its points out (-points, after 0), and carried points come
back as an opening entry in the new cycle, so the row equals the sum of the new cycle's
entries *and* the sum of all the licence's entries. A ledger several cycles behind (the job
did not run for a year) rolls once per ended cycle, each end judged by the same rule.
Rollover is not a change by another channel: it leaves ``external_change_at`` alone (the
R-ADJ-6 guard is about points someone else booked).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from cqcommon.errors import POINTS_LIMIT_EXCEEDED, DomainError
from cqcommon.scoring import cycle_on

Channel = Literal["online", "counter", "other_province", "registry", "cycle_rollover"]
#: The channel whose changes the sync guard does not count (R-ADJ-6).
ONLINE: Channel = "online"
#: R-JOB-5: the nightly scoring-cycle rollover.
CYCLE_ROLLOVER: Channel = "cycle_rollover"


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


@dataclass(frozen=True)
class RolloverCandidate:
    """A ledger whose cycle has ended (its row locked), with what the rollover needs."""

    row: LedgerRow
    person_id: str
    first_issued_on: date


@dataclass(frozen=True)
class RolloverStep:
    """One cycle end: the ledger after it (in the next cycle), the entries booked, whether
    the points were cleared, and the change of the row's points (-points or 0)."""

    row: LedgerRow
    entries: tuple[PointsEntry, ...]
    cleared: bool
    delta: int


def clears(points: int, *, unpaid_fines: bool, limit: int) -> bool:
    """R-JOB-5: at a cycle's end, points below ``limit`` with every fine paid are cleared;
    otherwise they carry into the next cycle."""
    return points < limit and not unpaid_fines


def roll_once(
    row: LedgerRow, *, first_issued_on: date, unpaid_fines: bool, limit: int, now: datetime
) -> RolloverStep:
    """The ledger moved past the end of its current cycle (R-JOB-5)."""
    start = row.cycle_end + timedelta(days=1)
    # the cycle containing the day after: its end by the anniversary; its start is that day
    # (the anniversary again, unless the registry moved first_issued_on since)
    end = cycle_on(first_issued_on, start).end
    cleared = clears(row.points, unpaid_fines=unpaid_fines, limit=limit)
    after = 0 if cleared else row.points
    closing = PointsEntry(
        row.licence_id, -row.points, 0, CYCLE_ROLLOVER, None, row.cycle_start, now
    )
    entries: tuple[PointsEntry, ...] = (closing,)
    if after > 0:
        entries += (PointsEntry(row.licence_id, after, after, CYCLE_ROLLOVER, None, start, now),)
    new_row = dataclasses.replace(row, points=after, cycle_start=start, cycle_end=end)
    return RolloverStep(new_row, entries, cleared, after - row.points)


def rollover(
    row: LedgerRow,
    *,
    first_issued_on: date,
    today: date,
    unpaid_since: date | None,
    limit: int,
    now: datetime,
) -> list[RolloverStep]:
    """Every cycle end the ledger has passed by ``today`` (none while its cycle runs: the
    job is idempotent). ``unpaid_since``: the earliest decision date among the licence's
    decided, unpaid fines (None: all paid); a cycle end is judged with the fines decided
    up to its last day, so fines of earlier cycles still unpaid keep carrying."""
    steps: list[RolloverStep] = []
    while row.cycle_end < today:
        unpaid = unpaid_since is not None and unpaid_since <= row.cycle_end
        step = roll_once(
            row, first_issued_on=first_issued_on, unpaid_fines=unpaid, limit=limit, now=now
        )
        steps.append(step)
        row = step.row
    return steps
