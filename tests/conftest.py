"""Cross-service fixtures: the whole cluster in this test process.

Every service's ``ServiceRuntime`` (gRPC server, outbox relay, consumers) runs in the
session's event loop on a free port, against the run's fresh database, Redis db and
Tansu broker (cqdev.pytest_plugin); the gateway app runs with its lifespan and is
reached through httpx's ASGI transport. One process means one tracer provider, so the
in-memory span exporter sees a request from the gateway to the read model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cqcommon.settings import Settings
from cqdev.testing import Cluster, in_process_cluster


@pytest.fixture(scope="session")
async def cluster(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Cluster]:
    # instrumented as `python -m cqgateway serve` is with tracing on: server spans per request
    async with in_process_cluster(test_settings, instrument=True) as running:
        yield running
