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

import httpx
import pytest
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.stack import free_port
from cqdev.testing import Cluster


@pytest.fixture(scope="session")
async def cluster(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Cluster]:
    from cqadjudication.wiring import SPEC as ADJUDICATION
    from cqfollow.wiring import SPEC as FOLLOW
    from cqgateway.app import create_app
    from cqpayment.wiring import SPEC as PAYMENT
    from cqquery.wiring import SPEC as QUERY
    from cqregistry.wiring import SPEC as REGISTRY
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    specs = (REGISTRY, ADJUDICATION, QUERY, PAYMENT, FOLLOW)
    # services call each other (query asks adjudication), so every address is known first
    ports = {spec.name: free_port() for spec in specs}
    addrs = {f"{name}_service_addr": f"127.0.0.1:{port}" for name, port in ports.items()}
    settings = test_settings.model_copy(update=addrs)
    runtimes: dict[str, ServiceRuntime] = {}
    try:
        for spec in specs:
            runtime = ServiceRuntime(spec, settings, port=ports[spec.name])
            await runtime.start()
            runtimes[spec.name] = runtime
        app = create_app(settings)
        # as `python -m cqgateway serve` does: server spans for every request
        FastAPIInstrumentor.instrument_app(app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
            ) as http,
        ):
            yield Cluster(settings, runtimes, http)
    finally:
        for runtime in reversed(list(runtimes.values())):
            await runtime.stop(grace_s=1)
