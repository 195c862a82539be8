"""A run record (R-JOB-*): one run of one job on one night, from start to end, with what
it did and the checkpoint a later run resumes from; and the night and deadline rules of
the window (22:00–00:30 Asia/Shanghai, ``cqcommon.maintenance``).

States: ``running`` while a runner works it; ``completed`` when the service said done;
``paused`` when the window was closing and the runner stopped taking batches (the rest
is left for the next night); ``failed`` when a batch kept failing, the service made no
progress, or the runner was stopped under it (a crashed run's record is closed as failed
by the next runner that takes the job's lock, which resumes from its checkpoint).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from cqcommon.clock import SHANGHAI
from cqcommon.maintenance import DEFAULT_WINDOW, MaintenanceWindow

#: the record's message is a short note, never a dump
MESSAGE_MAX = 500


class RunState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    PAUSED = "paused"
    FAILED = "failed"


#: a run of one of these states is picked up again the same night, from its checkpoint
UNFINISHED = frozenset({RunState.RUNNING, RunState.PAUSED, RunState.FAILED})


def short(message: str) -> str:
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    service: str
    night: date
    started_at: datetime
    state: RunState = RunState.RUNNING
    ended_at: datetime | None = None
    items_done: int = 0
    errors: int = 0
    batches: int = 0
    checkpoint: str = ""
    message: str = ""
    forced: bool = False
    resumed_from: str | None = None

    @classmethod
    def start(
        cls,
        *,
        job: str,
        service: str,
        night: date,
        now: datetime,
        forced: bool,
        resume: RunRecord | None,
    ) -> RunRecord:
        """A new run; from ``resume``'s checkpoint when it continues an unfinished run."""
        return cls(
            run_id=str(uuid.uuid4()),
            job=job,
            service=service,
            night=night,
            started_at=now,
            forced=forced,
            checkpoint=resume.checkpoint if resume is not None else "",
            resumed_from=resume.run_id if resume is not None else None,
            message=f"resumed from run {resume.run_id}" if resume is not None else "",
        )

    def after_batch(self, *, items: int, errors: int, checkpoint: str, message: str) -> RunRecord:
        return replace(
            self,
            items_done=self.items_done + items,
            errors=self.errors + errors,
            batches=self.batches + 1,
            checkpoint=checkpoint,
            message=short(message) if message else self.message,
        )

    def finish(
        self, state: RunState, now: datetime, message: str | None = None, *, errors: int = 0
    ) -> RunRecord:
        if state is RunState.RUNNING:
            raise ValueError("a run finishes completed, paused or failed")
        return replace(
            self,
            state=state,
            ended_at=now,
            errors=self.errors + errors,
            message=short(message) if message is not None else self.message,
        )


def night_of(now: datetime, window: MaintenanceWindow = DEFAULT_WINDOW) -> date:
    """The night ``now`` belongs to: the Asia/Shanghai day on which the window that is open
    (or, outside it, last opened) started; 23:00 and 00:10 of the next day are one night."""
    local = now.astimezone(SHANGHAI)
    if local.time() >= window.start:
        return local.date()
    return local.date() - timedelta(days=1)


def next_window_start(now: datetime, window: MaintenanceWindow = DEFAULT_WINDOW) -> datetime:
    """The next 22:00 Asia/Shanghai strictly after ``now`` (inside a window: tomorrow's)."""
    local = now.astimezone(SHANGHAI)
    start = datetime.combine(local.date(), window.start, tzinfo=SHANGHAI)
    if start <= local:
        start = datetime.combine(local.date() + timedelta(days=1), window.start, tzinfo=SHANGHAI)
    return start


def stop_taking_batches_at(
    now: datetime, margin: timedelta, window: MaintenanceWindow = DEFAULT_WINDOW
) -> datetime | None:
    """When a run started at ``now`` takes no new batch: ``margin`` before the window's end
    (00:30), if ``now`` is inside the window; None outside it (a forced run outside the
    window has no window to respect and runs to the end)."""
    if not window.contains(now):
        return None
    return window.ends_at(now) - margin


def parse_now(text: str, today_local: date) -> datetime:
    """``--now``: an ISO 8601 instant (without a zone: Asia/Shanghai), or ``HH:MM[:SS]``
    (today in Asia/Shanghai)."""
    text = text.strip()
    try:
        at = time.fromisoformat(text)
    except ValueError:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=SHANGHAI)
    if at.tzinfo is not None:
        raise ValueError(f"{text!r}: a bare time is Asia/Shanghai wall-clock time, without a zone")
    return datetime.combine(today_local, at, tzinfo=SHANGHAI)
