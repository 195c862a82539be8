"""Use case: may violations be handled online (R-Q-3 asks; the query service relays)."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.errors import TOO_MANY_VIOLATION_IDS, DomainError

from cqadjudication.domain.eligibility import NOT_DETERMINED, Eligibility, record_eligibility
from cqadjudication.ports import UnitOfWork

#: One page of the query service's lists (its MAX_PAGE_SIZE) fits in one question.
MAX_IDS = 100


async def handling_eligibility(
    *, uow: UnitOfWork, violation_ids: Sequence[str]
) -> dict[str, Eligibility]:
    """One answer per distinct id asked about, in the order asked.

    An id adjudication does not know gets the same ``unknown`` answer as a record whose
    record-level rules pass, so the answer does not reveal whether an id exists.
    """
    wanted = list(dict.fromkeys(violation_ids))
    if len(wanted) > MAX_IDS:
        raise DomainError(TOO_MANY_VIOLATION_IDS, details={"max": MAX_IDS})
    found = {v.violation_id: v for v in await uow.violations.get_many(wanted)}
    return {
        vid: record_eligibility(found[vid]) if vid in found else NOT_DETERMINED for vid in wanted
    }
