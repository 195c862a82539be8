"""Use cases: staff mark a violation disputed, or clear the dispute (R-ADJ-9). A disputed
violation is refused online (and its payment blocked) until cleared. Both are idempotent:
marking a disputed one again changes nothing and publishes nothing."""

from __future__ import annotations

from cqcommon.errors import DISPUTE_NOT_ALLOWED, VALIDATION_FAILED, VIOLATION_NOT_FOUND, DomainError
from cqcommon.text import check_text

from cqadjudication.domain.callers import Caller, require_staff
from cqadjudication.domain.events import ViolationDisputed, ViolationUndisputed
from cqadjudication.domain.violations import Violation
from cqadjudication.ports import UnitOfWork

MAX_REASON_CHARS = 500


async def dispute_violation(
    *, uow: UnitOfWork, caller: Caller, violation_id: str, reason: str
) -> Violation:
    staff_id = require_staff(caller)
    check_text(reason, field="reason")
    if len(reason) > MAX_REASON_CHARS:
        raise DomainError(VALIDATION_FAILED, details={"field": "reason", "max": MAX_REASON_CHARS})
    violation = await uow.violations.lock(violation_id)
    if violation is None:
        raise DomainError(VIOLATION_NOT_FOUND)
    if violation.disputed:
        return violation
    if violation.status == "paid":
        raise DomainError(DISPUTE_NOT_ALLOWED)
    changed = await uow.violations.set_disputed(violation.violation_id, True)
    uow.record(ViolationDisputed(violation.violation_id, staff_id, reason.strip()))
    await uow.commit()
    return changed


async def undispute_violation(*, uow: UnitOfWork, caller: Caller, violation_id: str) -> Violation:
    staff_id = require_staff(caller)
    violation = await uow.violations.lock(violation_id)
    if violation is None:
        raise DomainError(VIOLATION_NOT_FOUND)
    if not violation.disputed:
        return violation
    changed = await uow.violations.set_disputed(violation.violation_id, False)
    uow.record(ViolationUndisputed(violation.violation_id, staff_id))
    await uow.commit()
    return changed
