"""The gateway's request metrics (issue 12) without I/O: every request is counted under its
route template (never the raw path, which holds ids), with the error code the error
handlers set, and ``GET /metrics`` serves them without a token and outside /openapi.json.

Run on an app whose lifespan has not run, like ``test_hardening``: the requests here are
answered before any backend would be asked. The registry is the process's one registry,
so each test compares a series before and after its own requests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from cqcommon.settings import Settings
from cqgateway.app import create_app
from prometheus_client import REGISTRY

SECRET = "unit-secret-" + "x" * 40
DETAIL = "/api/v1/violations/{violation_id}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(token_secret=SECRET))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        yield c


def requests_total(route: str, method: str, status: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "cqtraffic_http_requests_total",
        {"route": route, "method": method, "status": status, "code": code},
    )
    return value or 0.0


def duration_count(route: str, method: str) -> float:
    value = REGISTRY.get_sample_value(
        "cqtraffic_http_request_duration_seconds_count", {"route": route, "method": method}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("path", "route", "status", "code"),
    [
        ("/healthz", "/healthz", "200", ""),
        # unauthenticated: the error handlers' code, under the template, not the id
        (f"/api/v1/violations/{uuid.uuid4()}", DETAIL, "401", "UNAUTHENTICATED"),
        # refused by a middleware before the router ran: still under its template
        ("/api/v1/violations/ab%00cd", DETAIL, "400", "INVALID_CHARACTERS"),
        # no route: one label for every unknown path, whatever it holds
        (f"/api/v1/nothing/{uuid.uuid4()}", "<unmatched>", "404", "NOT_FOUND"),
    ],
)
async def test_requests_are_counted_by_route_template_status_and_code(
    client: httpx.AsyncClient, path: str, route: str, status: str, code: str
) -> None:
    before = requests_total(route, "GET", status, code)
    timed_before = duration_count(route, "GET")
    r = await client.get(path)
    assert str(r.status_code) == status, r.text
    assert requests_total(route, "GET", status, code) == before + 1
    assert duration_count(route, "GET") == timed_before + 1


async def test_a_wrong_method_is_counted_under_the_route_it_targets(
    client: httpx.AsyncClient,
) -> None:
    before = requests_total("/healthz", "DELETE", "405", "METHOD_NOT_ALLOWED")
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert requests_total("/healthz", "DELETE", "405", "METHOD_NOT_ALLOWED") == before + 1


async def test_metrics_are_served_without_a_token_and_hold_no_raw_path(
    client: httpx.AsyncClient,
) -> None:
    secret_id = str(uuid.uuid4())
    await client.get(f"/api/v1/violations/{secret_id}")
    await client.get(f"/api/v1/unknown/{secret_id}")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "cqtraffic_http_requests_total{" in r.text
    assert f'route="{DETAIL}"' in r.text
    assert secret_id not in r.text


async def test_metrics_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths


async def test_a_method_of_the_clients_invention_is_counted_as_other(
    client: httpx.AsyncClient,
) -> None:
    before = requests_total("/healthz", "other", "405", "METHOD_NOT_ALLOWED")
    r = await client.request("BREW", "/healthz")
    assert r.status_code == 405
    assert requests_total("/healthz", "other", "405", "METHOD_NOT_ALLOWED") == before + 1
    assert requests_total("/healthz", "BREW", "405", "METHOD_NOT_ALLOWED") == 0
