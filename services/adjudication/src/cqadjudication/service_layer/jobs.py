"""Use case: one bounded batch of a nightly job (R-JOB-3, R-JOB-5); the runner calls again
with the returned checkpoint until ``done``. Both jobs are idempotent: what a batch did
leaves the set the next one reads, so running a job twice changes nothing the second
time, and a run that crashed resumes from its last checkpoint without redoing anything.

- ``generate_decision_notices`` (R-JOB-3, R-ADJ-7): decided violations without a notice,
  in decision-number order after the checkpoint; each notice rendered (in a worker thread)
  and stored. A decision whose party the registry copy does not know yet counts an error
  and is left for the next night.
- ``scoring_cycle_rollover`` (R-JOB-5): ledgers whose cycle ended before the job's day
  (``as_of`` in Asia/Shanghai, else the service clock), in licence-id order after the
  checkpoint, each row locked; each cycle end clears the points (below the limit, every
  fine decided up to that day paid) or carries them (``domain.points.rollover``), books
  ``cycle_rollover`` entries and records ``PointsChanged`` in the same transaction. A ledger
  several cycles behind rolls once per cycle end, in one go.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from cqcommon.checkpoints import JobBatch, batch_size
from cqcommon.clock import SHANGHAI
from cqcommon.errors import UNKNOWN_JOB, VALIDATION_FAILED, DomainError

from cqadjudication.domain.events import PointsChanged
from cqadjudication.domain.points import CYCLE_ROLLOVER, rollover
from cqadjudication.ports import JobsUnitsOfWork, NoticeRenderer
from cqadjudication.service_layer.notices import make_notices

GENERATE_NOTICES = "generate_decision_notices"
CYCLE_ROLLOVER_JOB = "scoring_cycle_rollover"
JOBS = (GENERATE_NOTICES, CYCLE_ROLLOVER_JOB)
#: rollover: one short transaction per batch; notices: ~0.3 s of CPU each, so fewer
DEFAULT_BATCH = {CYCLE_ROLLOVER_JOB: 500, GENERATE_NOTICES: 20}
MAX_BATCH = {CYCLE_ROLLOVER_JOB: 2000, GENERATE_NOTICES: 200}


def _batch_size(job: str, requested: int) -> int:
    return batch_size(requested, default=DEFAULT_BATCH[job], maximum=MAX_BATCH[job])


def _bad_checkpoint() -> DomainError:
    return DomainError(VALIDATION_FAILED, details={"field": "checkpoint"})


def parse_licence_checkpoint(text: str) -> str | None:
    """The last licence id done (a UUID), or empty: from the start."""
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _bad_checkpoint() from None


def parse_decision_checkpoint(text: str) -> str | None:
    """The last decision number done (digits), or empty: from the start."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 32):
        raise _bad_checkpoint()
    return text


async def run_job(
    *,
    uows: JobsUnitsOfWork,
    renderer: NoticeRenderer,
    job: str,
    checkpoint: str,
    batch_size: int,
    now: datetime,
    points_limit: int,
) -> JobBatch:
    """``now``: the runner's ``as_of`` if it sent one, else the service clock."""
    if job == CYCLE_ROLLOVER_JOB:
        return await scoring_cycle_rollover(
            uows,
            after=parse_licence_checkpoint(checkpoint),
            limit=_batch_size(job, batch_size),
            now=now,
            points_limit=points_limit,
        )
    if job == GENERATE_NOTICES:
        return await generate_decision_notices(
            uows,
            renderer,
            after=parse_decision_checkpoint(checkpoint),
            limit=_batch_size(job, batch_size),
            now=now,
        )
    raise DomainError(UNKNOWN_JOB, details={"jobs": list(JOBS)})


async def scoring_cycle_rollover(
    uows: JobsUnitsOfWork, *, after: str | None, limit: int, now: datetime, points_limit: int
) -> JobBatch:
    today = now.astimezone(SHANGHAI).date()
    async with uows() as uow:
        due = await uow.rollover.lock_due(today=today, after=after, limit=limit)
        if not due:
            return JobBatch(0, after or "", done=True)
        unpaid = await uow.rollover.unpaid_since([c.row.licence_id for c in due])
        for candidate in due:
            steps = rollover(
                candidate.row,
                first_issued_on=candidate.first_issued_on,
                today=today,
                unpaid_since=unpaid.get(candidate.row.licence_id),
                limit=points_limit,
                now=now,
            )
            for step in steps:
                await uow.rollover.roll(step.row, step.entries, now=now)
                uow.record(
                    PointsChanged(
                        licence_id=step.row.licence_id,
                        person_id=candidate.person_id,
                        delta=step.delta,
                        points_after=step.row.points,
                        cycle_start=step.row.cycle_start,
                        cycle_end=step.row.cycle_end,
                        channel=CYCLE_ROLLOVER,
                        violation_id=None,
                    )
                )
        await uow.commit()
    return JobBatch(len(due), due[-1].row.licence_id, done=len(due) < limit)


async def generate_decision_notices(
    uows: JobsUnitsOfWork,
    renderer: NoticeRenderer,
    *,
    after: str | None,
    limit: int,
    now: datetime,
) -> JobBatch:
    async with uows() as uow:
        due = await uow.notices.due(after=after, limit=limit)
    if not due:
        return JobBatch(0, after or "", done=True)
    stored = await make_notices(uows, renderer, due, now=now)
    errors = len(due) - len(stored)
    message = f"{errors} decision(s) wait for their party's registry record" if errors else ""
    return JobBatch(len(stored), due[-1], done=len(due) < limit, errors=errors, message=message)
