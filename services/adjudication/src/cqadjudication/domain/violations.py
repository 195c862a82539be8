"""Violations as legal records: what a recorded violation is, and the rules for
recording one from an enforcement system (R-ERR-1, glossary: points = code's 2nd digit)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Literal

from cqcommon.errors import DomainError, ErrorKind, define
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

DECISION_REQUIRED = define(
    "DECISION_REQUIRED",
    ErrorKind.INVALID,
    "现场处罚和一般程序的违法记录必须附带处罚决定书编号和日期。",
    "On-site and general-procedure records must carry a decision number and date.",
)
INVALID_FINE = define(
    "INVALID_FINE", ErrorKind.INVALID, "罚款金额不正确。", "The fine amount is not valid."
)
INVALID_VIOLATION_RECORD = define(
    "INVALID_VIOLATION_RECORD",
    ErrorKind.INVALID,
    "违法记录内容不完整或不正确。",
    "The violation record is incomplete or not valid.",
)
SOURCE_RECORD_CONFLICT = define(
    "SOURCE_RECORD_CONFLICT",
    ErrorKind.CONFLICT,
    "该来源记录已以不同内容登记。",
    "This source record was already recorded with different content.",
)
VEHICLE_NOT_FOUND = define(
    "VEHICLE_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该机动车。", "No such vehicle."
)
LICENCE_NOT_FOUND = define(
    "LICENCE_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该驾驶证。", "No such driving licence."
)
UNKNOWN_VIOLATION_CODE = define(
    "UNKNOWN_VIOLATION_CODE",
    ErrorKind.INVALID,
    "违法代码不在违法代码表中。",
    "The violation code is not in the catalogue.",
)
VIOLATION_NOT_FOUND = define(
    "VIOLATION_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该违法记录。", "No such violation."
)

MAX_FINE_FEN = 20_000_000  # 200,000 yuan: far above any traffic fine; catches unit mistakes


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
        """Decided records (on-site, general procedure) start handled; camera ones unhandled."""
        return "handled_unpaid" if self.decision_no else "unhandled"

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
