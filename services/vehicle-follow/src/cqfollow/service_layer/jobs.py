"""Use case: one bounded batch of a nightly job (R-JOB-4); the runner calls again with the
returned checkpoint until ``done``. Both jobs are idempotent and safe to run twice: each
row is changed by a conditional statement that a second run (or a racing unfollow) finds
nothing left to do for.

- ``expire_sms_follows`` (R-FOL-5): running SMS-authorised follows past ``expires_at``
  end with reason ``expired`` and ``FollowEnded`` (the query service then takes the
  follower's access away), in (expires_at, follow_id) order from the checkpoint.
- ``expire_follow_requests`` (R-FOL-2): requests nobody acted on before ``expires_at``
  become ``expired`` (no chance spent).
"""

from __future__ import annotations

from datetime import datetime

from cqcommon.checkpoints import JobBatch, batch_size, format_checkpoint, parse_checkpoint
from cqcommon.errors import UNKNOWN_JOB, DomainError

from cqfollow.domain.events import FollowEnded
from cqfollow.service_layer.config import Deps

EXPIRE_SMS_FOLLOWS = "expire_sms_follows"
EXPIRE_FOLLOW_REQUESTS = "expire_follow_requests"
JOBS = (EXPIRE_SMS_FOLLOWS, EXPIRE_FOLLOW_REQUESTS)
DEFAULT_BATCH = 100
MAX_BATCH = 1000


def _batch_size(requested: int) -> int:
    return batch_size(requested, default=DEFAULT_BATCH, maximum=MAX_BATCH)


async def run_job(
    deps: Deps,
    *,
    job: str,
    checkpoint: str,
    batch_size: int,
    as_of: datetime | None = None,
) -> JobBatch:
    """One batch of ``job``; ``as_of`` is the job runner's "now" (its --now), else the
    service's clock."""
    now = as_of or deps.clock.now()
    if job == EXPIRE_SMS_FOLLOWS:
        return await _expire_follows(deps, checkpoint, _batch_size(batch_size), now)
    if job == EXPIRE_FOLLOW_REQUESTS:
        return await _expire_requests(deps, checkpoint, _batch_size(batch_size), now)
    raise DomainError(UNKNOWN_JOB, details={"jobs": list(JOBS)})


async def _expire_follows(deps: Deps, checkpoint: str, limit: int, now: datetime) -> JobBatch:
    after = parse_checkpoint(checkpoint)
    ended = 0
    async with deps.uows() as uow:
        page = await uow.follows.lapsed_page(now=now, after=after, limit=limit)
        for follow in page:  # bounded: one page, one transaction
            done = await uow.follows.end_lapsed(follow.follow_id, now=now)
            if done is not None:
                uow.record(FollowEnded(done))
                ended += 1
        await uow.commit()
    if not page:
        return JobBatch(0, checkpoint, done=True)
    last = page[-1]
    assert last.expires_at is not None  # lapsed follows have an expiry
    return JobBatch(
        items_done=ended,
        checkpoint=format_checkpoint(last.expires_at, last.follow_id),
        done=len(page) < limit,
    )


async def _expire_requests(deps: Deps, checkpoint: str, limit: int, now: datetime) -> JobBatch:
    after = parse_checkpoint(checkpoint)
    expired = 0
    async with deps.uows() as uow:
        page = await uow.requests.lapsed_page(now=now, after=after, limit=limit)
        for request in page:
            if await uow.requests.expire(request.request_id, now=now):
                expired += 1
        await uow.commit()
    if not page:
        return JobBatch(0, checkpoint, done=True)
    last = page[-1]
    return JobBatch(
        items_done=expired,
        checkpoint=format_checkpoint(last.expires_at, last.request_id),
        done=len(page) < limit,
    )
