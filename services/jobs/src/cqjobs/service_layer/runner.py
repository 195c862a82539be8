"""Use case: run the nightly jobs (R-JOB-*), one after the other in the catalogue's order.

For each job: take its cluster-wide lock (held by another runner: skip it and say so);
find this night's latest run (completed: skip unless forced; unfinished: resume from its
checkpoint; a ``running`` one found while we hold the lock belonged to a runner that died,
so it is closed as failed first); record a new run; call the service's ``RunJob`` batch
after batch, writing the checkpoint after each; stop taking batches ``stop_margin`` before
00:30 (the run is ``paused``, the rest left for the next night); retry a failing batch a
few times with backoff, then mark the run failed and go on with the next job.

Outside the window the runner refuses to start unless forced (``OutsideWindowError``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from cqcommon.clock import Clock
from cqcommon.maintenance import DEFAULT_WINDOW, MaintenanceWindow

from cqjobs.domain.catalogue import CATALOGUE, JobSpec
from cqjobs.domain.runs import (
    UNFINISHED,
    RunRecord,
    RunState,
    night_of,
    stop_taking_batches_at,
)
from cqjobs.ports import (
    BatchCallError,
    BatchRequest,
    BatchResult,
    JobLocks,
    JobServices,
    Lease,
    Progress,
    ProgressLine,
    RunStore,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Outcome(StrEnum):
    COMPLETED = "completed"
    PAUSED = "paused"
    FAILED = "failed"
    #: another runner holds the job's lock (it is running the job now)
    LOCKED = "locked"
    #: already completed this night (and not forced)
    ALREADY_DONE = "already_done"
    #: the window was closing before the job's turn came
    NO_TIME = "no_time"


@dataclass(frozen=True)
class JobOutcome:
    job: str
    outcome: Outcome
    run: RunRecord | None = None


@dataclass(frozen=True)
class NightReport:
    night: date
    outcomes: list[JobOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [o.job for o in self.outcomes if o.outcome is Outcome.FAILED]


class OutsideWindowError(Exception):
    """The runner was started outside 22:00–00:30 without ``--force``."""

    def __init__(self, now: datetime, window: MaintenanceWindow) -> None:
        super().__init__(
            f"outside the maintenance window {window.start:%H:%M}-{window.end:%H:%M}"
            f" Asia/Shanghai (now {now:%Y-%m-%d %H:%M:%S %Z}); --force runs anyway"
        )


@dataclass(frozen=True)
class RunnerConfig:
    batch_size: int = 500
    stop_margin: timedelta = timedelta(seconds=60)
    #: attempts after the first failed one, before the run is marked failed
    retries: int = 3
    #: the first retry waits this long, each further one twice as long
    backoff_s: float = 0.5
    window: MaintenanceWindow = DEFAULT_WINDOW
    #: send the runner's clock as ``as_of`` (when it was given --now)
    send_as_of: bool = False


class _BatchFailedError(Exception):
    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class JobRunner:
    def __init__(
        self,
        *,
        store: RunStore,
        locks: JobLocks,
        services: JobServices,
        clock: Clock,
        progress: Progress,
        config: RunnerConfig,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.locks = locks
        self.services = services
        self.clock = clock
        self.progress = progress
        self.config = config
        self.sleep = sleep
        #: the run in progress as last saved (what an interruption records)
        self._current: RunRecord | None = None

    async def run(self, jobs: Sequence[JobSpec] = CATALOGUE, *, force: bool = False) -> NightReport:
        """Run ``jobs`` in order; raises ``OutsideWindowError`` outside the window unless
        ``force``."""
        cfg = self.config
        now = self.clock.now()
        if not force and not cfg.window.contains(now):
            raise OutsideWindowError(now, cfg.window)
        night = night_of(now, cfg.window)
        stop_at = stop_taking_batches_at(now, cfg.stop_margin, cfg.window)
        report = NightReport(night)
        for spec in jobs:
            if stop_at is not None and self.clock.now() >= stop_at:
                self.progress.skipped(spec, "the window is closing; left for the next night")
                report.outcomes.append(JobOutcome(spec.name, Outcome.NO_TIME))
                continue
            async with self.locks.hold(spec.name) as lease:
                if lease is None:
                    self.progress.skipped(spec, "another runner holds its lock (running it now)")
                    report.outcomes.append(JobOutcome(spec.name, Outcome.LOCKED))
                    continue
                report.outcomes.append(await self._run_job(spec, lease, night, stop_at, force))
        return report

    async def _run_job(
        self, spec: JobSpec, lease: Lease, night: date, stop_at: datetime | None, force: bool
    ) -> JobOutcome:
        latest = await self.store.latest(spec.name, night)
        if latest is not None and latest.state is RunState.COMPLETED and not force:
            self.progress.skipped(spec, f"already completed this night (run {latest.run_id})")
            return JobOutcome(spec.name, Outcome.ALREADY_DONE, latest)
        resume = latest if latest is not None and latest.state in UNFINISHED else None
        if resume is not None and resume.state is RunState.RUNNING:
            # We hold the job's lock, so whoever wrote "running" is gone (a crash, a kill):
            # close its record; this run carries on from its last checkpoint.
            await self.store.save(
                resume.finish(
                    RunState.FAILED, self.clock.now(), "interrupted: its runner stopped mid-run"
                )
            )
        run = RunRecord.start(
            job=spec.name,
            service=spec.service,
            night=night,
            now=self.clock.now(),
            forced=force,
            resume=resume,
        )
        await self.store.create(run)
        self._current = run
        self.progress.started(spec, run)
        try:
            run = await self._batches(spec, lease, run, stop_at)
        except asyncio.CancelledError:
            # Stopped from outside (Ctrl-C, SIGTERM): say so in the record (with the last
            # checkpoint written, not the one this run started from); the next run resumes.
            last = self._current or run
            interrupted = last.finish(RunState.FAILED, self.clock.now(), "interrupted")
            await asyncio.shield(self._save_quietly(interrupted))
            raise
        self.progress.finished(self._line(spec, run, stop_at))
        return JobOutcome(spec.name, Outcome(run.state.value), run)

    async def _save_quietly(self, run: RunRecord) -> None:
        try:
            await self.store.save(run)
        except Exception:  # the record stays "running"; the next runner closes it
            log.warning("could not record the interrupted run %s", run.run_id, exc_info=True)

    async def _batches(
        self, spec: JobSpec, lease: Lease, run: RunRecord, stop_at: datetime | None
    ) -> RunRecord:
        batch_size = spec.batch_size or self.config.batch_size
        while True:
            if stop_at is not None and self.clock.now() >= stop_at:
                run = run.finish(
                    RunState.PAUSED,
                    self.clock.now(),
                    "the window is closing: stopped taking batches; the rest is left for the"
                    " next night",
                )
                await self.store.save(run)
                return run
            if not await lease.alive():
                run = run.finish(
                    RunState.FAILED, self.clock.now(), "lost the job's lock (its connection)"
                )
                await self.store.save(run)
                return run
            request = BatchRequest(
                job=spec.name,
                checkpoint=run.checkpoint,
                batch_size=batch_size,
                night=run.night,
                as_of=self.clock.now() if self.config.send_as_of else None,
            )
            try:
                result = await self._batch_with_retries(spec, request)
            except _BatchFailedError as exc:
                run = run.finish(RunState.FAILED, self.clock.now(), str(exc), errors=exc.attempts)
                await self.store.save(run)
                return run
            before = run.checkpoint
            run = run.after_batch(
                items=result.items_done,
                errors=result.errors,
                checkpoint=result.checkpoint,
                message=result.message,
            )
            if result.done:
                run = run.finish(RunState.COMPLETED, self.clock.now())
                await self.store.save(run)
                return run
            if result.items_done == 0 and result.checkpoint == before:
                # Same place, nothing done, not done: asking again would loop forever.
                run = run.finish(
                    RunState.FAILED,
                    self.clock.now(),
                    "the service made no progress (same checkpoint, no items, not done)",
                )
                await self.store.save(run)
                return run
            await self.store.save(run)
            self._current = run
            self.progress.batch(self._line(spec, run, stop_at))

    async def _batch_with_retries(self, spec: JobSpec, request: BatchRequest) -> BatchResult:
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self.services.run_batch(spec.service, request)
            except BatchCallError as exc:
                if not exc.retryable or attempts > self.config.retries:
                    tries = f" after {attempts} attempts" if attempts > 1 else ""
                    raise _BatchFailedError(f"{exc}{tries}", attempts) from exc
                delay = self.config.backoff_s * 2 ** (attempts - 1)
                log.warning(
                    "%s: batch failed (%s); attempt %d of %d in %.1f s",
                    spec.name,
                    exc,
                    attempts + 1,
                    self.config.retries + 1,
                    delay,
                )
                await self.sleep(delay)

    def _line(self, spec: JobSpec, run: RunRecord, stop_at: datetime | None) -> ProgressLine:
        now = self.clock.now()
        elapsed = (now - run.started_at).total_seconds()
        rate = run.items_done / elapsed if elapsed > 0 else 0.0
        time_left = None
        if stop_at is not None:
            time_left = max(timedelta(0), self.config.window.ends_at(run.started_at) - now)
        return ProgressLine(spec=spec, run=run, rate=rate, time_left=time_left)
