"""Violations as legal records: what a recorded violation is, and the rules for
recording one from an enforcement system (R-ERR-1, glossary: points = code's 2nd digit).

A record is plausible before it becomes a legal record: it did not happen in the future
(beyond a clock-skew allowance) nor before the system's floor date; a decision it carries
is dated between the violation's day and today (Asia/Shanghai calendar days); and
DOMAIN.md "Self-service handling" decides which records carry a decision: on-site ones
always do; a non-site one may (an officer already decided it) or may not (it is
``unhandled``, including one that needs the general procedure, which a counter decides).
A decision is its number *and* its date, or neither. "Now" comes from the caller's
``Clock``, so every rule here is pure and testable at a pinned instant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from cqcommon.clock import SHANGHAI, Clock, today_in_shanghai
from cqcommon.errors import (
    DECISION_DATE_BEFORE_VIOLATION,
    DECISION_DATE_IN_FUTURE,
    DECISION_INCOMPLETE,
    DECISION_REQUIRED,
    INVALID_FINE,
    INVALID_VIOLATION_RECORD,
    OCCURRED_AT_IN_FUTURE,
    OCCURRED_AT_TOO_EARLY,
    DomainError,
)
from cqcommon.identifiers import (
    PlateType,
    parse_decision_no,
    parse_plate,
    parse_violation_code,
    points_of_code,
)
from cqcommon.text import check_text

Source = Literal["non_site", "on_site"]
Procedure = Literal["simple", "general"]
Status = Literal["unhandled", "handled_unpaid", "paid"]


MAX_FINE_FEN = 20_000_000  # 200,000 yuan: far above any traffic fine; catches unit mistakes
#: DOMAIN.md: the simple procedure (and so online handling) covers fines up to 200 yuan
#: inclusive; above it a case needs the general procedure.
SIMPLE_PROCEDURE_MAX_FINE_FEN = 20_000


@dataclass(frozen=True)
class RecordingWindow:
    """When a reported violation may have happened (settings ``record_clock_skew_s`` and
    ``violation_floor_date``): not later than now + ``clock_skew`` (enforcement systems'
    clocks drift), not before ``floor_date`` (a typo'd year, or a default 0001-01-01)."""

    clock_skew: timedelta
    floor_date: date


def violation_status(*, decided: bool, paid: bool) -> Status:
    """R-Q-3: ``paid`` once paid, else ``handled_unpaid`` once a decision exists, else
    ``unhandled`` (the one status rule; bulk data generators take it from here)."""
    if paid:
        return "paid"
    return "handled_unpaid" if decided else "unhandled"


@dataclass(frozen=True)
class ViolationReport:
    """A violation as an enforcement system (or a counter) reports it, validated."""

    source_system: str
    source_record_id: str
    plate_type: PlateType
    plate_number: str
    licence_no: str | None
    violation_code: str
    occurred_at: datetime
    place: str
    fine_fen: int
    source: Source
    procedure: Procedure
    decision_no: str | None
    decision_date: date | None

    @property
    def points(self) -> int:
        return points_of_code(self.violation_code)

    @property
    def initial_status(self) -> Status:
        """A record that arrives with a decision starts handled; one without, unhandled."""
        return violation_status(decided=self.decision_no is not None, paid=False)

    def fingerprint(self) -> str:
        """Identifies the content, to tell a replay from a conflicting resend."""
        body = asdict(self)
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def validate_report(
    *,
    source_system: str,
    source_record_id: str,
    plate_type: str,
    plate_number: str,
    licence_no: str | None,
    violation_code: str,
    occurred_at: datetime | None,
    place: str,
    fine_fen: int,
    source: str,
    procedure: str,
    decision_no: str | None,
    decision_date: date | None,
    clock: Clock,
    window: RecordingWindow,
) -> ViolationReport:
    """Check an incoming record; raises ``DomainError`` naming the first problem.

    ``decision_no`` empty or None and ``decision_date`` None both mean "no decision".
    """

    def bad(field: str) -> DomainError:
        return DomainError(INVALID_VIOLATION_RECORD, details={"field": field})

    # Defence in depth: the gateway checks every string, but records also arrive over
    # gRPC from imports; NUL or bidi controls must not reach the legal record.
    check_text(source_system, field="source_system")
    check_text(source_record_id, field="source_record_id")
    check_text(place, field="place")
    if licence_no is not None:
        check_text(licence_no, field="licence_no")
    if not source_system.strip() or len(source_system) > 64:
        raise bad("source_system")
    if not source_record_id.strip() or len(source_record_id) > 128:
        raise bad("source_record_id")
    if occurred_at is None or occurred_at.tzinfo is None:
        raise bad("occurred_at")
    if not place.strip() or len(place) > 200:
        raise bad("place")
    if source not in ("non_site", "on_site"):
        raise bad("source")
    if procedure not in ("simple", "general"):
        raise bad("procedure")
    if not 0 < fine_fen <= MAX_FINE_FEN:
        raise DomainError(INVALID_FINE, details={"fine_fen": fine_fen})
    ptype, plate = parse_plate(plate_type, plate_number)
    code = parse_violation_code(violation_code)
    check_occurred_at(occurred_at, clock=clock, window=window)
    decision_no = parse_decision_no(decision_no) if decision_no else None
    check_decision(decision_no, decision_date, source=source, occurred_at=occurred_at, clock=clock)
    return ViolationReport(
        source_system=source_system.strip(),
        source_record_id=source_record_id.strip(),
        plate_type=ptype,
        plate_number=plate,
        licence_no=licence_no.strip().upper() if licence_no else None,
        violation_code=code,
        occurred_at=occurred_at,
        place=place.strip(),
        fine_fen=fine_fen,
        source=source,  # type: ignore[arg-type]
        procedure=procedure,  # type: ignore[arg-type]
        decision_no=decision_no,
        decision_date=decision_date,
    )


def check_occurred_at(occurred_at: datetime, *, clock: Clock, window: RecordingWindow) -> None:
    """R-ERR-1: a violation did not happen in the future (beyond the clock-skew allowance)
    nor before the floor date (its Asia/Shanghai calendar day)."""
    if occurred_at > clock.now() + window.clock_skew:
        raise DomainError(OCCURRED_AT_IN_FUTURE, details={"field": "occurred_at"})
    if occurred_at.astimezone(SHANGHAI).date() < window.floor_date:
        raise DomainError(
            OCCURRED_AT_TOO_EARLY,
            details={"field": "occurred_at", "earliest": window.floor_date.isoformat()},
        )


def check_decision(
    decision_no: str | None,
    decision_date: date | None,
    *,
    source: str,
    occurred_at: datetime,
    clock: Clock,
) -> None:
    """DOMAIN.md "Self-service handling": a decision is its number and its date or neither;
    an on-site record always carries one; a decision is dated no earlier than the violation's
    day and no later than today (Asia/Shanghai)."""
    if decision_no is None and decision_date is None:
        if source == "on_site":
            raise DomainError(DECISION_REQUIRED, details={"field": "decision_no"})
        return  # non-site, undecided: recorded ``unhandled`` (general procedure included)
    if decision_no is None or decision_date is None:
        missing = "decision_no" if decision_no is None else "decision_date"
        raise DomainError(DECISION_INCOMPLETE, details={"field": missing})
    if decision_date < occurred_at.astimezone(SHANGHAI).date():
        raise DomainError(DECISION_DATE_BEFORE_VIOLATION, details={"field": "decision_date"})
    if decision_date > today_in_shanghai(clock):
        raise DomainError(DECISION_DATE_IN_FUTURE, details={"field": "decision_date"})


@dataclass(frozen=True)
class Violation:
    """A recorded violation (the legal record)."""

    violation_id: str
    source_system: str
    source_record_id: str
    vehicle_id: str
    plate_type: PlateType
    plate_number: str
    licence_id: str | None
    violation_code: str
    description_zh: str
    occurred_at: datetime
    place: str
    fine_fen: int
    points: int
    source: Source
    procedure: Procedure
    status: Status
    decision_no: str | None
    decision_date: date | None
    disputed: bool
