"""A background loop of a service (relay, consumer group, pruner, metrics) that crashes
is started again, counted and logged (``ServiceRuntime._supervised``), rather than
leaving a process that serves gRPC and no longer relays or consumes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cqcommon.metrics import BACKGROUND_TASK_RESTARTS
from cqcommon.runner import ServiceRuntime, ServiceSpec
from cqcommon.settings import Settings
from prometheus_client import REGISTRY


def _runtime() -> ServiceRuntime:
    spec = ServiceSpec(
        name="supervised-test",
        schema="supervised_test",
        migrations_dir=Path("."),
        addr=lambda s: "127.0.0.1:1",
        register=lambda server, ctx: (),
    )
    runtime = ServiceRuntime(spec, Settings(database_url="postgresql://x@127.0.0.1/x"), roles=())
    runtime.restart_backoff_s = 0.01
    return runtime


def _restarts(task: str) -> float:
    BACKGROUND_TASK_RESTARTS.labels("supervised-test", task)  # the series exists from 0
    labels = {"service": "supervised-test", "task": task}
    return REGISTRY.get_sample_value("cqtraffic_background_task_restarts_total", labels) or 0.0


async def test_a_crashed_loop_is_started_again_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = _runtime()
    runs = 0
    before = _restarts("flaky")

    async def flaky(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError("an error no loop caught")
        await stop.wait()

    runtime._spawn(flaky, "flaky")
    for _ in range(200):
        if runs == 3:
            break
        await asyncio.sleep(0.01)
    assert runs == 3
    assert _restarts("flaky") - before == 2
    assert "supervised-test:flaky crashed; starting it again" in caplog.text
    runtime.stop_event.set()
    await asyncio.wait_for(asyncio.gather(*runtime.tasks), 5)
    assert runs == 3  # stopping is not a crash: nothing starts again


async def test_a_loop_that_returns_is_not_started_again() -> None:
    runtime = _runtime()
    runs = 0

    async def once(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1

    runtime._spawn(once, "once")
    await asyncio.wait_for(asyncio.gather(*runtime.tasks), 5)
    assert runs == 1
