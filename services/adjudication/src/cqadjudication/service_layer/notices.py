"""Use cases: decision notices (R-ADJ-7, R-JOB-3). The nightly job makes the notice of every
decided violation that has none yet; a counter asking for one (``get_decision_notice``)
gets the stored notice, or, if the job has not come by yet, one made and stored at once so
the counter can print it. Both make a notice the same way (``make_notices``): read the
facts in one short transaction, render outside any transaction (a PDF takes ~0.3 s of CPU;
no row is locked meanwhile), store in a second one. Storing is idempotent: whoever stores
first wins, and both rendered the same bytes from the same facts.

Only staff may fetch a notice: a user caller gets FORBIDDEN (``require_staff``), like every
other counter operation of adjudication; users see their decisions through the query
service. Whether a decision number exists is only answered to staff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cqcommon.errors import DECISION_NOTICE_NOT_FOUND, HANDLING_IDENTITY_UNAVAILABLE, DomainError
from cqcommon.identifiers import parse_decision_no

from cqadjudication.domain.callers import Caller, require_staff
from cqadjudication.domain.notices import filename
from cqadjudication.ports import JobsUnitsOfWork, NoticeRenderer, StoredNotice


@dataclass(frozen=True)
class NoticeDocument:
    notice: StoredNotice
    filename: str
    content_type: str


async def make_notices(
    uows: JobsUnitsOfWork,
    renderer: NoticeRenderer,
    decision_nos: Sequence[str],
    *,
    now: datetime,
) -> dict[str, StoredNotice]:
    """Make and store the notices of ``decision_nos``; the stored ones by number. A decision
    whose party is not known yet is left out (made on a later run)."""
    async with uows() as uow:
        facts = await uow.notices.facts(decision_nos)
    rendered = {no: await renderer.render(f) for no, f in facts.items()}  # bounded: the batch
    stored: dict[str, StoredNotice] = {}
    if not rendered:
        return stored
    async with uows() as uow:
        for no, content in rendered.items():
            notice = StoredNotice(no, facts[no].violation_id, content, now)
            stored[no] = await uow.notices.add(notice)
        await uow.commit()
    return stored


async def get_decision_notice(
    *,
    uows: JobsUnitsOfWork,
    renderer: NoticeRenderer,
    caller: Caller,
    decision_no: str,
    now: datetime,
) -> NoticeDocument:
    require_staff(caller)
    number = parse_decision_no(decision_no)
    async with uows() as uow:
        notice = await uow.notices.get(number)
        decided = notice is not None or await uow.notices.is_decided(number)
    if not decided:
        raise DomainError(DECISION_NOTICE_NOT_FOUND, details={"decision_no": number})
    if notice is None:
        notice = (await make_notices(uows, renderer, [number], now=now)).get(number)
        if notice is None:  # the registry copy does not know the party yet
            raise DomainError(HANDLING_IDENTITY_UNAVAILABLE)
    return NoticeDocument(notice, filename(number), renderer.content_type)
