"""Use case: record a violation reported by an enforcement system, once per source record."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cqcommon.errors import (
    LICENCE_NOT_FOUND,
    SOURCE_RECORD_CONFLICT,
    UNKNOWN_VIOLATION_CODE,
    VEHICLE_NOT_FOUND,
    DomainError,
)

from cqadjudication.domain.events import ViolationRecorded
from cqadjudication.domain.violations import Violation, ViolationReport
from cqadjudication.ports import UnitOfWork


@dataclass(frozen=True)
class RecordResult:
    violation: Violation
    created: bool


def new_violation_id() -> str:
    """A random id: it leaves the system, so nothing about the record or person is in it."""
    return str(uuid.uuid4())


async def record_violation(
    *,
    uow: UnitOfWork,
    report: ViolationReport,
    new_id: Callable[[], str] = new_violation_id,
) -> RecordResult:
    """Store the violation and record ``ViolationRecorded`` in one transaction.

    The same source record sent again returns the first result (``created=False``, no
    second event); the same source record id with different content is a conflict.
    """
    repo = uow.violations
    vehicle_id = await repo.find_vehicle(report.plate_type.value, report.plate_number)
    if vehicle_id is None:
        raise DomainError(VEHICLE_NOT_FOUND, details={"plate_number": report.plate_number})
    licence_id = None
    if report.licence_no:
        licence_id = await repo.find_licence(report.licence_no)
        if licence_id is None:
            raise DomainError(LICENCE_NOT_FOUND)
    description = await repo.code_description(report.violation_code)
    if description is None:
        raise DomainError(UNKNOWN_VIOLATION_CODE, details={"code": report.violation_code})
    violation_id = new_id()
    if not await repo.add(violation_id, report, vehicle_id, licence_id, description):
        existing, fingerprint = await repo.by_source(report.source_system, report.source_record_id)
        if fingerprint != report.fingerprint():
            raise DomainError(
                SOURCE_RECORD_CONFLICT, details={"violation_id": existing.violation_id}
            )
        return RecordResult(existing, created=False)
    violation = await repo.get(violation_id)
    assert violation is not None  # inserted just above, same transaction
    uow.record(ViolationRecorded(violation))
    await uow.commit()
    return RecordResult(violation, created=True)
