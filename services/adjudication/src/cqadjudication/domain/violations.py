"""Violations as legal records: what a recorded violation is, and the rules for
recording one from an enforcement system (R-ERR-1, glossary: points = code's 2nd digit)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Literal

from cqcommon.errors import (
    DECISION_REQUIRED,
    INVALID_FINE,
    INVALID_VIOLATION_RECORD,
    DomainError,
)
from cqcommon.identifiers import (
    PlateType,
    parse_decision_no,
    parse_plate,
    parse_violation_code,
    points_of_code,
)

Source = Literal["non_site", "on_site"]
Procedure = Literal["simple", "general"]
Status = Literal["unhandled", "handled_unpaid", "paid"]


MAX_FINE_FEN = 20_000_000  # 200,000 yuan: far above any traffic fine; catches unit mistakes


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
) -> ViolationReport:
    """Check an incoming record; raises ``DomainError`` naming the first problem."""

    def bad(field: str) -> DomainError:
        return DomainError(INVALID_VIOLATION_RECORD, details={"field": field})

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
    decided = source == "on_site" or procedure == "general"
    if decision_no:
        decision_no = parse_decision_no(decision_no)
        if decision_date is None:
            raise DomainError(DECISION_REQUIRED)
    elif decided:
        raise DomainError(DECISION_REQUIRED)
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
        decision_no=decision_no or None,
        decision_date=decision_date if decision_no else None,
    )


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
