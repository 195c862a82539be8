"""R-SBX-1 through the gateway with the real services: in sandbox mode ``/readyz`` is 503,
naming ``sandbox_roster``, until the sandbox roster is loaded, and 200 once the loader
(``python -m cqregistry load-sandbox``'s ``load_sandbox``) has recorded its load."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cqcommon.clock import SystemClock, today_in_shanghai
from cqcommon.settings import Settings
from cqdev.stack import Stack
from cqdev.testing import Cluster, eventually, isolated_cluster
from cqregistry.entrypoints import loader

pytestmark = pytest.mark.integration


@pytest.fixture
async def fresh_sandbox(stack: Stack, test_settings: Settings) -> AsyncIterator[Cluster]:
    """A cluster on a database of its own: no roster load recorded yet."""
    settings = test_settings.model_copy(update={"sandbox_mode": True})
    async with isolated_cluster(stack, settings, label="readyz") as cluster:
        yield cluster


async def test_readyz_waits_for_the_sandbox_roster_then_answers_200(
    fresh_sandbox: Cluster,
) -> None:
    async def only_the_roster_missing() -> httpx.Response | None:
        # the broker probe may need a moment on a fresh cluster
        r = await fresh_sandbox.http.get("/readyz")
        return r if r.json()["failed"] == ["sandbox_roster"] else None

    before = await eventually(only_the_roster_missing, timeout_s=30, interval_s=0.2)
    assert before.status_code == 503
    assert before.json()["checks"]["sandbox_roster"]["ok"] is False

    summary = await loader.load_sandbox(
        fresh_sandbox.settings, today=today_in_shanghai(SystemClock())
    )
    assert summary.refused == 0, summary.notes

    after = await fresh_sandbox.http.get("/readyz")  # "not loaded" is never cached
    assert after.status_code == 200, after.text
    assert after.json()["checks"]["sandbox_roster"] == {"ok": True, "detail": None}
