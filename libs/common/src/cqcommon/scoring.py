"""Scoring cycles and the points dashboard (R-X-1): pure functions of dates and points.

A scoring cycle (记分周期) runs 12 months from the anniversary of the licence's first
issue. The cycle containing ``today`` starts on the latest anniversary on or before
today and ends the day before the next one; points below the limit with every fine
paid clear after that last day (R-JOB-5). A licence first issued on 29 February has
its anniversary on 28 February in common years.

A licence allows driving while its status is ``valid`` and its points are below the
cycle's limit (12 by default, setting ``POINTS_LIMIT``): reaching the limit means the
driver must stop driving and attend study and an exam (满分教育) before driving again.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

POINTS_LIMIT_REACHED = "POINTS_LIMIT_REACHED"
LICENCE_SUSPENDED = "LICENCE_SUSPENDED"
LICENCE_REVOKED = "LICENCE_REVOKED"
LICENCE_NOT_VALID = "LICENCE_NOT_VALID"

#: reason code → (Chinese, English)
LIMIT_REASONS: dict[str, tuple[str, str]] = {
    POINTS_LIMIT_REACHED: (
        "本记分周期累积记分已达满分，须停止驾驶并参加满分学习和考试。",
        "The points limit of this scoring cycle is reached: stop driving and attend "
        "the full-points study and exam.",
    ),
    LICENCE_SUSPENDED: ("驾驶证已被暂扣。", "The licence is suspended."),
    LICENCE_REVOKED: ("驾驶证已被吊销。", "The licence is revoked."),
    LICENCE_NOT_VALID: (
        "驾驶证状态异常，请到窗口办理。",
        "The licence is not valid; see a counter.",
    ),
}


@dataclass(frozen=True)
class ScoringCycle:
    start: date
    end: date  # the cycle's last day (inclusive)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class PointsDashboard:
    points: int
    points_limit: int
    cycle: ScoringCycle
    licence_status: str
    may_drive: bool
    limit_reason: str | None

    @property
    def limit_reason_text(self) -> tuple[str, str] | None:
        return LIMIT_REASONS[self.limit_reason] if self.limit_reason else None


def anniversary(first_issued_on: date, year: int) -> date:
    """The first-issue anniversary in ``year`` (29 Feb → 28 Feb in common years)."""
    day = first_issued_on.day
    if first_issued_on.month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return date(year, first_issued_on.month, day)


def cycle_on(first_issued_on: date, today: date) -> ScoringCycle:
    """The scoring cycle containing ``today`` (the first one if not yet issued)."""
    if today < first_issued_on:
        today = first_issued_on
    start = anniversary(first_issued_on, today.year)
    if start > today:
        start = anniversary(first_issued_on, today.year - 1)
    end = anniversary(first_issued_on, start.year + 1) - timedelta(days=1)
    return ScoringCycle(start=start, end=end)


def may_drive(points: int, licence_status: str, points_limit: int) -> tuple[bool, str | None]:
    """Whether the licence allows driving, and the reason code when it does not."""
    if licence_status == "suspended":
        return False, LICENCE_SUSPENDED
    if licence_status == "revoked":
        return False, LICENCE_REVOKED
    if licence_status != "valid":
        return False, LICENCE_NOT_VALID
    if points >= points_limit:
        return False, POINTS_LIMIT_REACHED
    return True, None


def dashboard(
    *,
    points: int,
    licence_status: str,
    first_issued_on: date,
    today: date,
    points_limit: int,
    cycle: ScoringCycle | None = None,
) -> PointsDashboard:
    """R-X-1: points this cycle, the cycle's end, and whether the licence allows driving.

    ``cycle`` is the cycle adjudication reported with the last points change. Once that
    cycle has ended and no rollover event has arrived yet, today's cycle is shown with
    the points as recorded: only the rollover job (R-JOB-5) decides what carries over.
    """
    current = cycle_on(first_issued_on, today)
    if cycle is not None and cycle.contains(today):
        current = cycle
    allowed, reason = may_drive(points, licence_status, points_limit)
    return PointsDashboard(
        points=points,
        points_limit=points_limit,
        cycle=current,
        licence_status=licence_status,
        may_drive=allowed,
        limit_reason=reason,
    )
