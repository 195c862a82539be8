"""Metrics through the whole in-process cluster (issue 12): after a few requests the
gateway's ``GET /metrics`` has the request series (by route template), the services' RPC
series, and, once the samplers ran, the outbox, consumer-lag and payment-state gauges; a
service's own endpoint serves the same registry; and nothing personal appears in a scrape
after requests full of personal data (plate, VIN, ID number, phone, ids, Alipay user id).

The cluster's services share one process and one registry (as ``cqcommon.metrics`` says),
so the samplers are run here with ``sample_once`` rather than waiting for their interval.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest
from cqcommon.metrics import serve_metrics
from cqdev.testing import Cluster, new_owner

pytestmark = pytest.mark.integration


def series(text: str, name: str, **labels: str) -> list[str]:
    """Lines of ``name`` whose labels include ``labels``."""
    found = []
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            found.append(line)
    return found


async def scrape(cluster: Cluster) -> str:
    r = await cluster.http.get("/metrics")
    assert r.status_code == 200
    return r.text


async def test_requests_rpcs_and_sampled_gauges_are_scraped(cluster: Cluster) -> None:
    user = await cluster.login("2088000000000001")
    assert (await cluster.http.get("/api/v1/me", headers=user)).status_code in (200, 404)
    missing = await cluster.http.get(
        "/api/v1/violations/00000000-0000-4000-8000-000000000000", headers=user
    )
    assert missing.status_code == 404
    for name in ("payment", "query", "adjudication", "follow", "jobs"):
        runtime = cluster.runtimes[name]
        assert runtime.metrics is not None
        results = await runtime.metrics.sample_once()
        assert all(results.values()), (name, results)

    text = await scrape(cluster)
    detail_404 = series(
        text,
        "cqtraffic_http_requests_total",
        route="/api/v1/violations/{violation_id}",
        method="GET",
        status="404",
    )
    assert detail_404
    assert all('code=""' not in line for line in detail_404)  # the error code is labelled
    assert series(text, "cqtraffic_http_request_duration_seconds_bucket", route="/api/v1/me")
    assert series(text, "cqtraffic_grpc_server_handled_total", service="query", grpc_code="OK")
    assert series(text, "cqtraffic_grpc_server_handling_seconds_count", service="query")
    assert series(text, "cqtraffic_outbox_pending_events", service="payment")
    assert series(text, "cqtraffic_outbox_oldest_pending_age_seconds", service="adjudication")
    assert series(text, "cqtraffic_consumer_lag_messages", service="query")
    for state in ("pending", "succeeded", "failed", "duplicate", "refunded"):
        assert series(text, "cqtraffic_payments", state=state), state
    assert "cqtraffic_refunds_awaiting_approval " in text
    assert series(text, "cqtraffic_points_buying_alerts_24h", kind="licence_for_many_vehicles")
    assert series(
        text, "cqtraffic_job_last_success_timestamp_seconds", job="resolve_pending_payments"
    )


async def test_a_service_endpoint_serves_the_process_registry(cluster: Cluster) -> None:
    assert (await cluster.http.get("/healthz")).status_code == 200
    endpoint = serve_metrics("127.0.0.1", 0)
    try:

        def get() -> str:
            url = f"http://127.0.0.1:{endpoint.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())

        text = await asyncio.to_thread(get)
    finally:
        endpoint.close()
    assert series(text, "cqtraffic_http_requests_total", route="/healthz", status="200")


async def test_no_personal_data_in_a_scrape_after_personal_requests(cluster: Cluster) -> None:
    owner = await cluster.import_unpinned(new_owner())
    user = await cluster.login(owner.alipay_user_id)
    staff = await cluster.staff()
    http = cluster.http
    await http.get("/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=user)
    await http.get(f"/api/v1/violations/{owner.person_id}", headers=user)
    await http.post(
        "/api/v1/violations/lookup/vehicle",
        json={"plate_type": "02", "plate_number": owner.plate_number, "vin": owner.vin[-6:]},
        headers=user,
    )
    await http.post(
        "/api/v1/violations/lookup/licence",
        json={"name": owner.name, "licence_no": owner.id_number, "file_no": owner.file_no},
        headers=user,
    )
    await http.post(
        "/api/v1/follows/vehicles",
        json={"plate_type": "02", "plate_number": owner.plate_number, "vin": owner.vin},
        headers=user,
    )
    await http.get(
        "/internal/v1/vehicles",
        params={"plate_type": "02", "plate_number": owner.plate_number},
        headers=staff,
    )
    await http.get(f"/internal/v1/{owner.phone}/{owner.id_number}", headers=staff)
    text = await scrape(cluster)
    secrets = {
        owner.plate_number,
        owner.plate_number[1:],  # the plate without its province character
        owner.vin,
        owner.vin[-6:],
        owner.id_number,
        owner.phone,
        owner.name,
        owner.file_no,
        owner.person_id,
        owner.vehicle_id,
        owner.licence_id,
        owner.alipay_user_id,
    }
    leaked = {s for s in secrets if s in text}
    assert not leaked, leaked
    # every route label is a template or <unmatched>: no path segment that is not a name
    for route in set(re.findall(r'route="([^"]*)"', text)):
        assert route == "<unmatched>" or re.fullmatch(r"(/[a-z0-9_.\-]+|/\{[a-z_]+\})+", route), (
            route
        )
