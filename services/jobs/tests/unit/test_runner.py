"""The job runner's rules on fakes of the services, the store and the locks, with a fixed
clock (R-JOB-*): the window's edges (21:59 refused, 22:00 runs, 00:29 runs and stops
before 00:30 with the margin, 00:30 refused), --force, the night, resuming from a recorded
checkpoint, a completed job skipped the same night, retries then failed, the lock held
elsewhere, and the progress output."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timedelta

import pytest
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DomainError
from cqjobs.adapters.fakes import (
    InMemoryLocks,
    InMemoryRunStore,
    RecordingProgress,
    ScriptedServices,
)
from cqjobs.adapters.terminal import TerminalProgress
from cqjobs.domain.catalogue import CATALOGUE, JOB_NAMES, job_named, select
from cqjobs.domain.runs import RunRecord, RunState, next_window_start, night_of, parse_now
from cqjobs.ports import BatchCallError, BatchRequest, BatchResult
from cqjobs.service_layer.runner import (
    JobRunner,
    Outcome,
    OutsideWindowError,
    RunnerConfig,
)
from cqjobs.service_layer.runs import list_runs
from cqjobs.service_layer.scheduler import Scheduler


def sh(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SHANGHAI)


class Work:
    """A service with ``total`` items per job, ``per_batch_s`` seconds a batch on the clock;
    the checkpoint is the offset done."""

    def __init__(self, clock: FixedClock, total: int = 10, per_batch_s: float = 1.0) -> None:
        self.clock = clock
        self.total: dict[str, int] = {}
        self.default_total = total
        self.per_batch = timedelta(seconds=per_batch_s)
        self.failures: dict[str, list[BatchCallError]] = {}

    def __call__(self, service: str, request: BatchRequest) -> BatchResult:
        self.clock.advance(self.per_batch)
        queued = self.failures.get(request.job)
        if queued:
            raise queued.pop(0)
        total = self.total.get(request.job, self.default_total)
        start = int(request.checkpoint or 0)
        end = min(total, start + request.batch_size)
        return BatchResult(items_done=end - start, checkpoint=str(end), done=end >= total)


def make(
    now: datetime, *, total: int = 10, per_batch_s: float = 1.0, margin_s: float = 60
) -> tuple[JobRunner, InMemoryRunStore, InMemoryLocks, ScriptedServices, Work, FixedClock]:
    clock = FixedClock(now)
    work = Work(clock, total=total, per_batch_s=per_batch_s)
    services = ScriptedServices(work)
    store = InMemoryRunStore()
    locks = InMemoryLocks()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    runner = JobRunner(
        store=store,
        locks=locks,
        services=services,
        clock=clock,
        progress=RecordingProgress(),
        config=RunnerConfig(
            batch_size=4, stop_margin=timedelta(seconds=margin_s), retries=3, backoff_s=0.5
        ),
        sleep=sleep,
    )
    runner.slept = slept  # type: ignore[attr-defined]
    return runner, store, locks, services, work, clock


ONE = (job_named("expire_sms_follows"),)


# -- the window's edges -------------------------------------------------------------------
async def test_r_job_window_21_59_is_refused_and_calls_nothing() -> None:
    runner, store, _, services, _, _ = make(sh(2026, 11, 1, 21, 59, 59))
    with pytest.raises(OutsideWindowError, match="22:00-00:30"):
        await runner.run()
    assert services.calls == [] and store.runs == {}


async def test_r_job_window_22_00_runs_every_job_in_the_catalogue_order() -> None:
    runner, store, _, services, _, _ = make(sh(2026, 11, 1, 22, 0))
    report = await runner.run()
    assert [o.outcome for o in report.outcomes] == [Outcome.COMPLETED] * len(CATALOGUE)
    assert report.night == date(2026, 11, 1)
    order: list[str] = []
    for service, request in services.calls:
        assert service == job_named(request.job).service
        if not order or order[-1] != request.job:
            order.append(request.job)
    assert order == list(JOB_NAMES)
    for name in JOB_NAMES:
        (run,) = store.of(name)
        assert run.state is RunState.COMPLETED and run.items_done == 10 and run.batches == 3
        assert run.night == date(2026, 11, 1) and run.ended_at is not None


async def test_r_job_window_00_29_runs_then_stops_before_00_30_with_the_margin() -> None:
    # 10 s a batch, 30 s margin: batches at 00:29:00, :10, :20; at :30 none is taken
    runner, store, _, services, _, clock = make(
        sh(2026, 11, 2, 0, 29), total=1000, per_batch_s=10, margin_s=30
    )
    report = await runner.run(ONE)
    assert report.night == date(2026, 11, 1)  # the night that started at 22:00 yesterday
    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.PAUSED
    (run,) = store.of("expire_sms_follows")
    assert run.state is RunState.PAUSED and run.batches == 3 and run.checkpoint == "12"
    assert "next night" in run.message
    assert len(services.calls) == 3
    assert clock.now() < sh(2026, 11, 2, 0, 30)


async def test_r_job_the_window_closing_leaves_the_later_jobs_for_the_next_night() -> None:
    runner, store, _, _, _, _ = make(sh(2026, 11, 2, 0, 29, 30), margin_s=60)
    report = await runner.run()
    assert {o.outcome for o in report.outcomes} == {Outcome.NO_TIME}
    assert store.runs == {}


async def test_r_job_window_00_30_is_refused() -> None:
    runner, _, _, services, _, _ = make(sh(2026, 11, 2, 0, 30))
    with pytest.raises(OutsideWindowError):
        await runner.run()
    assert services.calls == []


async def test_r_job_force_runs_outside_the_window_to_the_end_with_no_deadline() -> None:
    runner, store, _, _, _, _ = make(sh(2026, 11, 2, 15, 0), total=1000, per_batch_s=3600)
    report = await runner.run(ONE, force=True)
    (run,) = store.of("expire_sms_follows")
    assert report.outcomes[0].outcome is Outcome.COMPLETED and run.forced
    assert run.items_done == 1000 and run.night == date(2026, 11, 1)


def test_r_job_night_and_next_start() -> None:
    assert night_of(sh(2026, 11, 1, 22, 0)) == date(2026, 11, 1)
    assert night_of(sh(2026, 11, 2, 0, 29)) == date(2026, 11, 1)
    assert night_of(sh(2026, 11, 2, 21, 59)) == date(2026, 11, 1)
    assert night_of(datetime(2026, 11, 1, 14, 0, tzinfo=SHANGHAI).astimezone()) == date(
        2026, 11, 1
    ) - timedelta(days=1)
    assert next_window_start(sh(2026, 11, 1, 21, 0)) == sh(2026, 11, 1, 22, 0)
    assert next_window_start(sh(2026, 11, 1, 22, 0)) == sh(2026, 11, 2, 22, 0)
    assert next_window_start(sh(2026, 11, 2, 0, 10)) == sh(2026, 11, 2, 22, 0)


def test_now_argument_iso_or_a_time_today() -> None:
    today = date(2026, 11, 1)
    assert parse_now("23:59", today) == sh(2026, 11, 1, 23, 59)
    assert parse_now("2026-11-02T00:29:00", today) == sh(2026, 11, 2, 0, 29)
    assert parse_now("2026-11-01T14:00:00+00:00", today) == sh(2026, 11, 1, 22, 0)
    with pytest.raises(ValueError):
        parse_now("tonight", today)


# -- resuming, skipping, forcing ----------------------------------------------------------
async def test_r_job_resumes_from_the_checkpoint_of_an_unfinished_run_the_same_night() -> None:
    runner, store, _, services, _, _ = make(sh(2026, 11, 1, 23, 0))
    crashed = RunRecord(
        run_id="11111111-1111-1111-1111-111111111111",
        job="expire_sms_follows",
        service="follow",
        night=date(2026, 11, 1),
        started_at=sh(2026, 11, 1, 22, 0),
        items_done=8,
        batches=2,
        checkpoint="8",
    )
    await store.create(crashed)  # still "running": its runner died
    await runner.run(ONE)
    old, new = store.of("expire_sms_follows")
    assert old.state is RunState.FAILED and "interrupted" in old.message and old.ended_at
    assert services.calls[0][1].checkpoint == "8"
    assert new.state is RunState.COMPLETED and new.items_done == 2
    assert new.resumed_from == crashed.run_id and new.checkpoint == "10"


async def test_r_job_a_paused_run_of_last_night_is_not_resumed_tonight() -> None:
    runner, store, _, services, _, _ = make(sh(2026, 11, 2, 22, 0))
    paused = RunRecord(
        run_id="22222222-2222-2222-2222-222222222222",
        job="expire_sms_follows",
        service="follow",
        night=date(2026, 11, 1),
        started_at=sh(2026, 11, 1, 22, 0),
        state=RunState.PAUSED,
        ended_at=sh(2026, 11, 2, 0, 29),
        checkpoint="8",
    )
    await store.create(paused)
    await runner.run(ONE)
    assert services.calls[0][1].checkpoint == ""  # the jobs are idempotent: what is left


async def test_r_job_a_completed_job_is_skipped_the_same_night_unless_forced() -> None:
    runner, store, _, services, _, _ = make(sh(2026, 11, 1, 22, 0))
    await runner.run(ONE)
    calls = len(services.calls)
    report = await runner.run(ONE)
    assert report.outcomes[0].outcome is Outcome.ALREADY_DONE
    assert len(services.calls) == calls and len(store.of("expire_sms_follows")) == 1
    report = await runner.run(ONE, force=True)
    assert report.outcomes[0].outcome is Outcome.COMPLETED
    second = store.of("expire_sms_follows")[1]
    assert second.forced and second.resumed_from is None and second.items_done == 10


async def test_r_job_a_job_held_by_another_runner_is_skipped_and_said_so() -> None:
    runner, store, locks, services, _, _ = make(sh(2026, 11, 1, 22, 0))
    locks.held_elsewhere.add("expire_sms_follows")
    report = await runner.run()
    by_job = {o.job: o.outcome for o in report.outcomes}
    assert by_job["expire_sms_follows"] is Outcome.LOCKED
    assert all(o is Outcome.COMPLETED for j, o in by_job.items() if j != "expire_sms_follows")
    assert store.of("expire_sms_follows") == []
    assert all(r.job != "expire_sms_follows" for _, r in services.calls)
    progress = runner.progress
    assert ("skipped", "expire_sms_follows") in [(e[0], e[1]) for e in progress.events]  # type: ignore[attr-defined]


async def test_r_job_a_lost_lock_stops_the_job() -> None:
    runner, store, locks, _, _, _ = make(sh(2026, 11, 1, 22, 0))
    locks.lost.add("expire_sms_follows")
    await runner.run(ONE)
    (run,) = store.of("expire_sms_follows")
    assert run.state is RunState.FAILED and "lock" in run.message


# -- failures -----------------------------------------------------------------------------
async def test_r_job_a_failing_batch_is_retried_with_backoff_then_succeeds() -> None:
    runner, store, _, _, work, _ = make(sh(2026, 11, 1, 22, 0))
    work.failures["expire_sms_follows"] = [
        BatchCallError("follow RunJob: UNAVAILABLE", retryable=True) for _ in range(2)
    ]
    await runner.run(ONE)
    (run,) = store.of("expire_sms_follows")
    assert run.state is RunState.COMPLETED and run.items_done == 10
    assert runner.slept == [0.5, 1.0]  # type: ignore[attr-defined]


async def test_r_job_retries_then_failed_and_the_runner_goes_on_with_the_next_job() -> None:
    runner, store, _, _, work, _ = make(sh(2026, 11, 1, 22, 0))
    work.failures["resolve_pending_payments"] = [
        BatchCallError("payment RunJob: UNAVAILABLE", retryable=True) for _ in range(10)
    ]
    report = await runner.run()
    assert report.failed == ["resolve_pending_payments"]
    (run,) = store.of("resolve_pending_payments")
    assert run.state is RunState.FAILED and run.errors == 4
    assert "UNAVAILABLE after 4 attempts" in run.message
    assert runner.slept == [0.5, 1.0, 2.0]  # type: ignore[attr-defined]
    assert store.of("reconcile_payments")[0].state is RunState.COMPLETED


async def test_r_job_a_refusal_is_not_retried() -> None:
    runner, store, _, _, work, _ = make(sh(2026, 11, 1, 22, 0))
    work.failures["scoring_cycle_rollover"] = [
        BatchCallError("adjudication RunJob: UNIMPLEMENTED", retryable=False)
    ]
    await runner.run((job_named("scoring_cycle_rollover"),))
    (run,) = store.of("scoring_cycle_rollover")
    assert run.state is RunState.FAILED and run.errors == 1 and "UNIMPLEMENTED" in run.message
    assert runner.slept == []  # type: ignore[attr-defined]


async def test_r_job_a_service_making_no_progress_fails_instead_of_looping() -> None:
    clock = FixedClock(sh(2026, 11, 1, 22, 0))
    store = InMemoryRunStore()
    services = ScriptedServices(lambda s, r: BatchResult(0, r.checkpoint, False))
    runner = JobRunner(
        store=store,
        locks=InMemoryLocks(),
        services=services,
        clock=clock,
        progress=RecordingProgress(),
        config=RunnerConfig(),
    )
    await runner.run(ONE)
    (run,) = store.of("expire_sms_follows")
    assert run.state is RunState.FAILED and "no progress" in run.message
    assert len(services.calls) == 1


async def test_r_job_the_checkpoint_is_written_after_every_batch_and_as_of_is_sent() -> None:
    clock = FixedClock(sh(2026, 11, 1, 22, 0))
    work = Work(clock)
    store = InMemoryRunStore()
    services = ScriptedServices(work)
    runner = JobRunner(
        store=store,
        locks=InMemoryLocks(),
        services=services,
        clock=clock,
        progress=RecordingProgress(),
        config=RunnerConfig(batch_size=4, send_as_of=True),
    )
    await runner.run(ONE)
    assert store.saves == 3  # after batch 1, after batch 2, and the completion
    assert [r.checkpoint for _, r in services.calls] == ["", "4", "8"]
    assert [r.as_of for _, r in services.calls] == [
        sh(2026, 11, 1, 22, 0),
        sh(2026, 11, 1, 22, 0, 1),
        sh(2026, 11, 1, 22, 0, 2),
    ]
    assert {r.night for _, r in services.calls} == {date(2026, 11, 1)}


# -- progress -----------------------------------------------------------------------------
async def test_r_job_progress_shows_items_rate_and_time_left_in_the_window() -> None:
    runner, _, _, _, _, _ = make(sh(2026, 11, 2, 0, 0), total=10, per_batch_s=2)
    out = io.StringIO()
    runner.progress = TerminalProgress(out, every_s=0)
    await runner.run(ONE)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("expire_sms_follows [follow, R-JOB-4]: started from the start")
    assert lines[1] == (
        "expire_sms_follows: 4 items, 2.0 items/s, 1 batches, 0 errors, 0:29:58 left in the window"
    )
    assert lines[-1] == (
        "expire_sms_follows: completed, 10 items, 1.7 items/s, 3 batches, 0 errors,"
        " 0:29:54 left in the window"
    )


async def test_r_job_progress_of_skips_and_forced_runs() -> None:
    runner, _, locks, _, _, _ = make(sh(2026, 11, 2, 15, 0))
    out = io.StringIO()
    runner.progress = TerminalProgress(out, every_s=0)
    locks.held_elsewhere.add("expire_follow_requests")
    await runner.run(select(["expire_sms_follows", "expire_follow_requests"]), force=True)
    text = out.getvalue()
    assert "outside the window (forced)" in text
    assert "expire_follow_requests: skipped, another runner holds its lock" in text


# -- the records for staff ----------------------------------------------------------------
async def test_r_job_runs_are_listed_newest_first_for_staff_only() -> None:
    runner, store, _, _, _, _ = make(sh(2026, 11, 1, 22, 0))
    await runner.run()
    runs = await list_runs(store, staff_id="s-1", job="", limit=3)
    assert [r.job for r in runs] == list(reversed(JOB_NAMES))[:3]
    only = await list_runs(store, staff_id="s-1", job="expire_sms_follows", limit=0)
    assert [r.job for r in only] == ["expire_sms_follows"]
    with pytest.raises(DomainError) as forbidden:
        await list_runs(store, staff_id="", job="", limit=0)
    assert forbidden.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as unknown:
        await list_runs(store, staff_id="s-1", job="nope", limit=0)
    assert unknown.value.code == "UNKNOWN_JOB"


# -- the scheduler ------------------------------------------------------------------------
async def test_r_job_scheduler_runs_the_night_inside_the_window_then_waits() -> None:
    runner, store, _, _, _, clock = make(sh(2026, 11, 1, 23, 0))
    stop = asyncio.Event()
    nights: list[object] = []

    def on_night(report: object) -> None:
        nights.append(report)
        stop.set()

    await asyncio.wait_for(Scheduler(runner, clock, on_night=on_night).run(stop), 5)
    assert len(nights) == 1 and len(store.runs) == len(CATALOGUE)


async def test_r_job_scheduler_outside_the_window_runs_nothing_until_22_00() -> None:
    runner, store, _, _, _, clock = make(sh(2026, 11, 1, 21, 59, 59))
    stop = asyncio.Event()
    task = asyncio.create_task(Scheduler(runner, clock, max_sleep_s=0.01).run(stop))
    await asyncio.sleep(0.05)
    assert store.runs == {}
    clock.advance(timedelta(seconds=1))  # 22:00:00
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(store.runs) == len(CATALOGUE):
            break
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(store.runs) == len(CATALOGUE)
