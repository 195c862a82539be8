"""Use cases: reconcile a night's day with the provider's statement (R-JOB-2), and show a
reconciled day to staff (``GetReconciliation``).

Which day: the night's previous Asia/Shanghai day (``domain.reconciliation.
day_to_reconcile``): the provider's bill of a day exists only the next morning, so the
night of the 20th reconciles the 19th.

Bounded as one day per call, not pages of the statement: the provider serves a day's
statement as one file (Alipay's trade bill), so paging it would download it once per page.
A day of Chongqing's online fines is some tens of thousands of lines (a few MB): the
comparison runs in memory in one pass, our side is one indexed range read (no row locked),
and the write is one short transaction holding only the day's reconciliation rows, which no
daytime request touches. The checkpoint is the day reconciled: a runner resuming a night
that already finished it is answered at once; a call that crashed wrote nothing (one
transaction), so resuming redoes the day from the start, and a rerun replaces the day's
rows, so it changes nothing when nothing changed.

A statement not produced yet (``STATEMENT_NOT_READY``) is done with a message and writes
nothing; a provider that does not answer counts an error (the day stays unreconciled, and
``GetReconciliation`` says so). Mismatches are listed, never healed here: a trade the
statement has and we hold pending is settled by the pending-payment job (R-JOB-1) through
the one settlement path, and shows as matched on the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from cqcommon.errors import VALIDATION_FAILED, DomainError

from cqpayment.domain.callers import Caller, require_staff
from cqpayment.domain.provider import (
    STATEMENT_NOT_READY,
    ProviderRefusedError,
    ProviderUnavailableError,
)
from cqpayment.domain.reconciliation import (
    MismatchKind,
    ReconciledDay,
    day_bounds,
    day_to_reconcile,
    reconcile,
)
from cqpayment.service_layer.config import Deps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileOutcome:
    items_done: int
    checkpoint: str
    errors: int
    message: str


async def reconcile_night(
    deps: Deps, *, night: date, checkpoint: str, now: datetime
) -> ReconcileOutcome:
    """Reconcile the day before ``night`` (the whole day in this one call)."""
    day = day_to_reconcile(night)
    if checkpoint == day.isoformat():
        return ReconcileOutcome(0, checkpoint, 0, f"{day}: reconciled earlier this night")
    try:
        lines = await deps.provider.statement(day)
    except ProviderRefusedError as exc:
        if exc.code == STATEMENT_NOT_READY:
            return ReconcileOutcome(0, checkpoint, 0, f"{day}: statement not available yet")
        log.warning("reconcile_payments: the statement of %s was refused (%s)", day, exc.code)
        return ReconcileOutcome(0, checkpoint, 1, f"{day}: statement refused ({exc.code})")
    except ProviderUnavailableError:
        log.warning("reconcile_payments: no statement of %s (provider unavailable)", day)
        return ReconcileOutcome(0, checkpoint, 1, f"{day}: provider unavailable")
    start, end = day_bounds(day)
    async with deps.uows() as uow:
        ours = await uow.reconciliation.our_payments(
            paid_from=start, paid_until=end, out_trade_nos=[line.out_trade_no for line in lines]
        )
        result = reconcile(day, ours, lines)
        await uow.reconciliation.replace_day(result, completed_at=now)
        await uow.commit()
    counts = {kind: result.count(kind) for kind in MismatchKind}
    if result.mismatches:
        log.warning(
            "reconcile_payments: %s has %d mismatches (%s)",
            day,
            len(result.mismatches),
            ", ".join(f"{k.value} {n}" for k, n in counts.items()),
        )
    message = f"{day}: {result.matched} matched, " + ", ".join(
        f"{n} {k.value}" for k, n in counts.items()
    )
    return ReconcileOutcome(
        items_done=result.statement_lines + counts[MismatchKind.OURS_ONLY],
        checkpoint=day.isoformat(),
        errors=0,
        message=message,
    )


async def get_reconciliation(
    deps: Deps, *, caller: Caller, day: date | None
) -> ReconciledDay | None:
    """Staff: the day's stored reconciliation (None: not reconciled, or not yet)."""
    require_staff(caller)
    if day is None:
        raise DomainError(VALIDATION_FAILED, details={"field": "date"})
    async with deps.uows().reading() as uow:
        return await uow.reconciliation.day(day)
