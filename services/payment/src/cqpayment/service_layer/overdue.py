"""Use case: one batch of the overdue job (R-JOB-6): mark decisions from their 16th day and
send each party one SMS, ever.

Once per decision, even across crashes and two runners: a batch claims its decisions in
one transaction (rows locked ``SKIP LOCKED``, marked ``claimed`` / ``no_phone`` / ``paid``)
and commits *before* any SMS is sent, so a decision is claimed by one batch only. The SMS
go out after the commit; those the gateway took are marked ``sms_sent`` with its id, those
it refused (``SmsUnavailableError``: nothing was sent) are un-claimed so the next night
tries again. A process dying between the claim and the send leaves the decision
``claimed``, unsent: at most one SMS, never two (an unknown failure of the sender is
treated the same way, since the message may have gone).

Bounded: ``limit`` decisions per batch in (decision_date, decision_no) order from the
checkpoint, at most ``SEND_CONCURRENCY`` SMS in flight. The checkpoint moves past
decisions left for later (disputed, party unknown) and past failed sends, so a batch never
picks the same decision twice in one night. ``now`` is the runner's ``as_of``: it decides
which decisions are overdue and the amount the SMS names.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from cqcommon.clock import SHANGHAI
from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.sms import SmsSender, SmsUnavailableError

from cqpayment.domain.overdue import (
    OverdueCandidate,
    OverdueNotice,
    latest_overdue_decision_date,
    notice_for,
    sms_params,
)
from cqpayment.service_layer.config import Deps

log = logging.getLogger(__name__)

#: SMS in flight at once (each bounded by the sender's own deadline).
SEND_CONCURRENCY = 8


@dataclass(frozen=True)
class OverdueOutcome:
    items_done: int
    checkpoint: str
    done: bool
    errors: int
    message: str


def parse_checkpoint(text: str) -> tuple[date, str] | None:
    """``<decision_date ISO>|<decision_no>`` or empty (from the start)."""
    if not text:
        return None
    day, sep, decision_no = text.partition("|")
    try:
        if not sep or not decision_no.isdigit():
            raise ValueError(text)
        return date.fromisoformat(day), decision_no
    except ValueError:
        raise DomainError(VALIDATION_FAILED, details={"field": "checkpoint"}) from None


def format_checkpoint(decision_date: date, decision_no: str) -> str:
    return f"{decision_date.isoformat()}|{decision_no}"


async def notify_overdue_batch(
    deps: Deps, *, checkpoint: str, limit: int, now: datetime
) -> OverdueOutcome:
    if deps.sms is None:
        raise RuntimeError("notify_overdue_decisions needs an SMS sender (Deps.sms)")
    after = parse_checkpoint(checkpoint)
    today = now.astimezone(SHANGHAI).date()
    tally: Counter[str] = Counter()
    claimed: list[OverdueCandidate] = []
    async with deps.uows() as uow:
        page = await uow.overdue.candidates(
            dated_until=latest_overdue_decision_date(today), after=after, limit=limit
        )
        for candidate in page:
            notice = notice_for(candidate)
            if notice is None:
                tally["left"] += 1
                continue
            await uow.overdue.mark(candidate.decision_no, notice, now=now)
            if notice is OverdueNotice.CLAIMED:
                claimed.append(candidate)
            else:
                tally[notice.value] += 1
        await uow.commit()
    if not page:
        return OverdueOutcome(0, checkpoint, True, 0, "no overdue decision left")
    results = await _send_all(deps.sms, deps.config.overdue_template_code, claimed, today)
    async with deps.uows() as uow:
        for candidate, (outcome, sms_id) in zip(claimed, results, strict=True):
            if outcome == "failed":
                await uow.overdue.unclaim(candidate.decision_no)
            elif outcome == "sent":
                await uow.overdue.sent(candidate.decision_no, sms_id=sms_id, now=now)
        await uow.commit()
    tally.update(f"sms_{outcome}" for outcome, _ in results)
    if tally["sms_failed"]:
        log.warning(
            "notify_overdue_decisions: %d of %d SMS not sent", tally["sms_failed"], len(claimed)
        )
    last = page[-1]
    return OverdueOutcome(
        items_done=len(page),
        checkpoint=format_checkpoint(last.decision_date, last.decision_no),
        done=len(page) < limit,
        errors=tally["sms_failed"] + tally["sms_unknown"],
        message=", ".join(f"{n} {k}" for k, n in sorted(tally.items()) if n),
    )


#: "sent" (with the gateway's id), "failed" (the gateway did not take it: un-claim) or
#: "unknown" (the sender failed in an unexpected way, it may have gone: keep the claim).
SendOutcome = tuple[Literal["sent", "failed", "unknown"], str]


async def _send_all(
    sms: SmsSender, template_code: str, claimed: list[OverdueCandidate], today: date
) -> list[SendOutcome]:
    """Each claimed decision's SMS, at most ``SEND_CONCURRENCY`` at once."""
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(candidate: OverdueCandidate) -> SendOutcome:
        assert candidate.phone is not None  # claimed only with a phone (notice_for)
        async with gate:
            try:
                sms_id = await sms.send(
                    phone=candidate.phone,
                    template_code=template_code,
                    params=sms_params(candidate, today),
                )
            except SmsUnavailableError as exc:
                log.warning("overdue SMS of decision %s not sent (%s)", candidate.decision_no, exc)
                return "failed", ""
            except Exception:
                log.exception("overdue SMS of decision %s: outcome unknown", candidate.decision_no)
                return "unknown", ""
            return "sent", sms_id

    return list(await asyncio.gather(*(one(c) for c in claimed)))
