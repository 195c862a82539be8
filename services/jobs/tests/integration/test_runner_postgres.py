"""The runner on real PostgreSQL (its jobs schema, advisory locks) against fake RunJob
servers (a grpc.aio server implementing PaymentService, FollowService and
AdjudicationService.RunJob that counts calls and items): two runners started at once run
each job once (R-JOB-*); a runner cancelled after a batch leaves its checkpoint and the
next run resumes from it; a lock is released when its runner's connection dies; the run
records come back through JobsService.ListRuns."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from cqcommon.clock import SHANGHAI
from cqcommon.db import Database
from cqcommon.migrations import apply_migrations
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.testing import eventually
from cqjobs.adapters.clocks import StartedAtClock
from cqjobs.adapters.fakes import RecordingProgress
from cqjobs.adapters.postgres_locks import AdvisoryLocks
from cqjobs.domain.catalogue import CATALOGUE, JOB_NAMES, job_named
from cqjobs.domain.runs import RunState
from cqjobs.service_layer.runner import NightReport, Outcome
from cqjobs.wiring import MIGRATIONS_DIR, SPEC, RunnerParts, build_runner
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import follow_pb2_grpc
from cqtraffic.jobs.v1 import jobs_pb2 as jpb
from cqtraffic.jobs.v1 import jobs_pb2_grpc
from cqtraffic.payment.v1 import payment_pb2_grpc

pytestmark = pytest.mark.integration

ITEMS = 12
BATCH = 4


@dataclass
class FakeJobServers(
    payment_pb2_grpc.PaymentServiceServicer,
    follow_pb2_grpc.FollowServiceServicer,
    adjudication_pb2_grpc.AdjudicationServiceServicer,
):
    """RunJob of all three services on one port: ``ITEMS`` items per job, the checkpoint is
    the offset done; counts calls and how often each item was worked."""

    delay_s: float = 0.02
    calls: Counter[str] = field(default_factory=Counter)
    worked: Counter[tuple[str, int]] = field(default_factory=Counter)
    requests: list[jobs_pb2.RunJobRequest] = field(default_factory=list)
    #: set after this many batches of any job (a test cancels the runner then)
    batch_event: asyncio.Event = field(default_factory=asyncio.Event)
    event_after: int = 0

    async def RunJob(  # noqa: N802 - gRPC method name
        self, request: jobs_pb2.RunJobRequest, context: Any
    ) -> jobs_pb2.RunJobResponse:
        self.requests.append(request)
        self.calls[request.job] += 1
        await asyncio.sleep(self.delay_s)
        start = int(request.checkpoint or 0)
        end = min(ITEMS, start + request.batch_size)
        for item in range(start, end):
            self.worked[(request.job, item)] += 1
        if self.event_after and len(self.requests) >= self.event_after:
            self.batch_event.set()
        return jobs_pb2.RunJobResponse(
            items_done=end - start, checkpoint=str(end), done=end >= ITEMS
        )


@pytest.fixture
async def fake_servers() -> AsyncIterator[tuple[FakeJobServers, str]]:
    fake = FakeJobServers()  # type: ignore[abstract]  # RunJob only, on purpose
    server = grpc.aio.server()
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(fake, server)
    follow_pb2_grpc.add_FollowServiceServicer_to_server(fake, server)
    adjudication_pb2_grpc.add_AdjudicationServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture(scope="module")
async def jobs_db(test_settings: Settings) -> AsyncIterator[Database]:
    await apply_migrations(test_settings.database_url, SPEC.schema, MIGRATIONS_DIR)
    db = Database(test_settings.database_url, SPEC.schema, min_size=1, max_size=4)
    await db.open()
    yield db
    await db.close()


def a_night() -> date:
    """A night no other test uses (the session's database is shared)."""
    return date(2040, 1, 1) + timedelta(days=random.randrange(20_000))


def settings_for(base: Settings, addr: str) -> Settings:
    return base.model_copy(
        update={
            "payment_service_addr": addr,
            "follow_service_addr": addr,
            "adjudication_service_addr": addr,
            "jobs_batch_size": BATCH,
        }
    )


def runner_at(settings: Settings, db: Database, night: date, at: time = time(22, 0)) -> RunnerParts:
    clock = StartedAtClock(datetime.combine(night, at, tzinfo=SHANGHAI))
    return build_runner(settings, db, clock, RecordingProgress(), send_as_of=True)


async def runs_of(settings: Settings, night: date) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        cur = await conn.execute(
            "SELECT job, state, items_done, checkpoint, resumed_from, message FROM jobs.runs"
            " WHERE night = %s ORDER BY started_at",
            (night,),
        )
        return list(await cur.fetchall())


async def test_r_job_two_runners_started_at_once_run_each_job_once(
    test_settings: Settings, jobs_db: Database, fake_servers: tuple[FakeJobServers, str]
) -> None:
    fake, addr = fake_servers
    settings = settings_for(test_settings, addr)
    night = a_night()
    first, second = runner_at(settings, jobs_db, night), runner_at(settings, jobs_db, night)
    try:
        reports: list[NightReport] = list(
            await asyncio.gather(first.runner.run(), second.runner.run())
        )
    finally:
        await first.close()
        await second.close()
    # every item of every job worked exactly once, in ITEMS / BATCH calls per job
    assert set(fake.calls) == set(JOB_NAMES)
    assert all(n == ITEMS // BATCH for n in fake.calls.values()), fake.calls
    assert set(fake.worked.values()) == {1}
    rows = await runs_of(settings, night)
    assert sorted(r[0] for r in rows) == sorted(JOB_NAMES)  # one record per job
    assert {r[1] for r in rows} == {"completed"} and {r[2] for r in rows} == {ITEMS}
    for name in JOB_NAMES:
        outcomes = sorted(
            o.outcome.value for report in reports for o in report.outcomes if o.job == name
        )
        assert outcomes[0] == "completed" or outcomes[1] == "completed", outcomes
        assert outcomes.count("completed") == 1, (name, outcomes)
        assert set(outcomes) - {"completed"} <= {"locked", "already_done"}
    # the night and as_of reached the services
    assert {(r.night.year, r.night.month, r.night.day) for r in fake.requests} == {
        (night.year, night.month, night.day)
    }
    assert all(r.HasField("as_of") for r in fake.requests)


async def test_r_job_a_run_cancelled_after_a_batch_resumes_from_its_checkpoint(
    test_settings: Settings, jobs_db: Database, fake_servers: tuple[FakeJobServers, str]
) -> None:
    fake, addr = fake_servers
    settings = settings_for(test_settings, addr)
    night = a_night()
    job = (job_named("expire_sms_follows"),)
    fake.event_after = 1  # after the first batch
    fake.delay_s = 0.2
    crashed = runner_at(settings, jobs_db, night)
    task = asyncio.create_task(crashed.runner.run(job))
    await asyncio.wait_for(fake.batch_event.wait(), 10)

    async def first_checkpoint_written() -> bool:
        rows = await runs_of(settings, night)
        return bool(rows) and rows[0][3] == "4"

    await eventually(first_checkpoint_written, timeout_s=10, interval_s=0.02)
    task.cancel()  # while the second batch is at the service
    with pytest.raises(asyncio.CancelledError):
        await task
    await crashed.close()
    ((name, state, items, checkpoint, _, message),) = await runs_of(settings, night)
    assert (name, state, items, checkpoint) == ("expire_sms_follows", "failed", BATCH, "4")
    assert message == "interrupted"
    fake.requests.clear()
    fake.delay_s = 0.0
    resumed = runner_at(settings, jobs_db, night, time(23, 0))
    try:
        report = await resumed.runner.run(job)
    finally:
        await resumed.close()
    assert report.outcomes[0].outcome is Outcome.COMPLETED
    assert fake.requests[0].checkpoint == "4"
    _old, new = await runs_of(settings, night)
    assert new[1:4] == ("completed", ITEMS - BATCH, str(ITEMS))
    assert new[4] is not None and "resumed from run" in new[5]
    # every item worked, none before the checkpoint twice (the cancelled batch may have been)
    assert all(fake.worked[("expire_sms_follows", i)] == 1 for i in range(BATCH))
    assert all(fake.worked[("expire_sms_follows", i)] >= 1 for i in range(ITEMS))
    # a record left "running" by a runner that died (kill -9) is closed by the next one
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        await conn.execute(
            "UPDATE jobs.runs SET state = 'running', ended_at = NULL WHERE night = %s"
            " AND resumed_from IS NOT NULL",
            (night,),
        )
        await conn.execute(
            "UPDATE jobs.runs SET checkpoint = '8' WHERE night = %s AND resumed_from IS NOT NULL",
            (night,),
        )
        await conn.commit()
    fake.requests.clear()
    again = runner_at(settings, jobs_db, night, time(23, 30))
    try:
        await again.runner.run(job)
    finally:
        await again.close()
    assert fake.requests[0].checkpoint == "8"
    states = [r[1] for r in await runs_of(settings, night)]
    assert states == ["failed", "failed", "completed"]


async def test_r_job_the_lock_is_released_when_its_runners_connection_dies(
    test_settings: Settings,
) -> None:
    job = f"lock-test-{random.randrange(10**9)}"
    first, second = (
        AdvisoryLocks(test_settings.database_url),
        AdvisoryLocks(test_settings.database_url),
    )
    async with first.hold(job) as lease:
        assert lease is not None and await lease.alive()
        async with second.hold(job) as refused:
            assert refused is None  # a second runner skips the job
        pid = lease.conn.info.backend_pid
        async with await psycopg.AsyncConnection.connect(
            test_settings.database_url, autocommit=True
        ) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.2)
        assert not await lease.alive()  # the runner notices before its next batch
        async with second.hold(job) as taken:
            assert taken is not None  # the dead connection's lock is gone
    async with first.hold(job) as again:
        assert again is not None  # released on exit too


async def test_r_job_runs_are_listed_through_jobs_service(
    test_settings: Settings, jobs_db: Database, fake_servers: tuple[FakeJobServers, str]
) -> None:
    _fake, addr = fake_servers
    settings = settings_for(test_settings, addr)
    night = a_night()
    parts = runner_at(settings, jobs_db, night)
    try:
        await parts.runner.run(CATALOGUE[:2])
    finally:
        await parts.close()
    runtime = ServiceRuntime(SPEC, settings, roles=("serve",), port=0)
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        staff = common.Caller(staff_id="s-1", staff_role="clerk")
        answer = await stub.ListRuns(jpb.ListRunsRequest(caller=staff, limit=200), timeout=5)
        ours = [r for r in answer.runs if (r.night.year, r.night.month, r.night.day)
                == (night.year, night.month, night.day)]  # fmt: skip
        assert [r.job for r in ours] == [CATALOGUE[1].name, CATALOGUE[0].name]  # newest first
        assert ours[0].state == RunState.COMPLETED.value and ours[0].items_done == ITEMS
        assert ours[0].service == "payment" and ours[0].ended_at.seconds > 0
        one = await stub.ListRuns(
            jpb.ListRunsRequest(caller=staff, job=CATALOGUE[0].name, limit=5), timeout=5
        )
        assert {r.job for r in one.runs} == {CATALOGUE[0].name}
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListRuns(jpb.ListRunsRequest(caller=common.Caller(user_id="u")), timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.ListRuns(jpb.ListRunsRequest(caller=staff, job="nope"), timeout=5)
        assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close(None)
        await runtime.stop(grace_s=1)
