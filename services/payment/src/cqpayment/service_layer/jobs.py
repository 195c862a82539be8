"""Use case: one bounded batch of a nightly job (R-JOB-*); the runner calls again with the
returned checkpoint until ``done``. Every job is idempotent and safe to run twice.

- ``resolve_pending_payments`` (R-JOB-1, R-PAY-4): payments pending longer than
  ``PAYMENT_PENDING_RESOLVE_AFTER_S``, in (created_at, payment_id) order from the
  checkpoint, each asked of the provider and settled; one past its expiry whose trade is
  still open is closed. A provider that does not answer counts an error and the payment
  stays for the next run.
- ``reap_idempotency_keys`` (R-PAY-3): keys completed more than
  ``IDEMPOTENCY_KEY_RETENTION_H`` ago (and in-flight ones abandoned that long), deleted in
  batches.
- ``reconcile_payments`` (R-JOB-2): the night's previous day against the provider's
  statement (``service_layer.reconciliation``), one day per call.
- ``notify_overdue_decisions`` (R-JOB-6): decisions from their 16th day marked once and
  their party sent one SMS (``service_layer.overdue``), in (decision_date, decision_no)
  pages from the checkpoint.

``as_of`` is the runner's "now" (its ``--now`` in drills and tests; else the service's
clock) and ``night`` the Asia/Shanghai day the window belongs to (else the night of
``as_of``); the jobs about a day or a date use them, never the wall clock.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from cqcommon.checkpoints import JobBatch, batch_size, format_checkpoint, parse_checkpoint
from cqcommon.errors import UNKNOWN_JOB, DomainError

from cqpayment.domain.provider import ProviderUnavailableError
from cqpayment.domain.reconciliation import night_of
from cqpayment.service_layer.config import Deps
from cqpayment.service_layer.overdue import notify_overdue_batch
from cqpayment.service_layer.reconciliation import reconcile_night
from cqpayment.service_layer.settlement import resolve

log = logging.getLogger(__name__)

RESOLVE_PENDING = "resolve_pending_payments"
REAP_KEYS = "reap_idempotency_keys"
RECONCILE = "reconcile_payments"
NOTIFY_OVERDUE = "notify_overdue_decisions"
JOBS = (RESOLVE_PENDING, REAP_KEYS, RECONCILE, NOTIFY_OVERDUE)
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
    night: date | None = None,
) -> JobBatch:
    """One batch of ``job``; ``as_of`` / ``night`` default to the clock's now and its night."""
    now = as_of or deps.clock.now()
    if job == RESOLVE_PENDING:
        return await _resolve_pending(deps, checkpoint, _batch_size(batch_size))
    if job == REAP_KEYS:
        return await _reap_keys(deps, _batch_size(batch_size))
    if job == RECONCILE:
        r = await reconcile_night(
            deps, night=night or night_of(now), checkpoint=checkpoint, now=now
        )
        return JobBatch(r.items_done, r.checkpoint, done=True, errors=r.errors, message=r.message)
    if job == NOTIFY_OVERDUE:
        o = await notify_overdue_batch(
            deps, checkpoint=checkpoint, limit=_batch_size(batch_size), now=now
        )
        return JobBatch(o.items_done, o.checkpoint, o.done, errors=o.errors, message=o.message)
    raise DomainError(UNKNOWN_JOB, details={"jobs": list(JOBS)})


async def _resolve_pending(deps: Deps, checkpoint: str, limit: int) -> JobBatch:
    after = parse_checkpoint(checkpoint)
    now = deps.clock.now()
    async with deps.uows() as uow:
        page = await uow.payments.pending_page(
            created_before=now - deps.config.resolve_after, after=after, limit=limit
        )
    errors = 0
    for payment in page:  # bounded: one page
        try:
            await resolve(deps, payment, close_if_expired=True)
        except ProviderUnavailableError:
            errors += 1
    if not page:
        return JobBatch(0, checkpoint, done=True)
    last = page[-1]
    if errors:
        log.warning("resolve_pending_payments: %d of %d not answered", errors, len(page))
    return JobBatch(
        items_done=len(page),
        checkpoint=format_checkpoint(last.created_at, last.payment_id),
        done=len(page) < limit,
        errors=errors,
    )


async def _reap_keys(deps: Deps, limit: int) -> JobBatch:
    older_than = deps.clock.now() - deps.config.key_retention
    async with deps.uows() as uow:
        deleted = await uow.keys.reap(older_than=older_than, limit=limit)
        await uow.commit()
    return JobBatch(items_done=deleted, checkpoint="", done=deleted < limit)
