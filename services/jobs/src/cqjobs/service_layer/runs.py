"""Use case: the run records for staff (JobsService.ListRuns, ``GET /internal/v1/jobs``)."""

from __future__ import annotations

from cqcommon.errors import FORBIDDEN, UNKNOWN_JOB, VALIDATION_FAILED, DomainError

from cqjobs.domain.catalogue import JOB_NAMES
from cqjobs.domain.runs import RunRecord
from cqjobs.ports import RunStore

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


async def list_runs(store: RunStore, *, staff_id: str, job: str, limit: int) -> list[RunRecord]:
    """Newest first; staff only; ``job`` empty for every job, else one of the catalogue."""
    if not staff_id:
        raise DomainError(FORBIDDEN)
    if job and job not in JOB_NAMES:
        raise DomainError(UNKNOWN_JOB, details={"jobs": list(JOB_NAMES)})
    if limit < 0 or limit > MAX_LIMIT:
        raise DomainError(VALIDATION_FAILED, details={"field": "limit", "max": MAX_LIMIT})
    return await store.list_runs(job or None, limit or DEFAULT_LIMIT)
