"""Gateway hardening against real PostgreSQL (staff accounts, audit trail) with
``FakeServices`` standing in for the gRPC services: the security probe's cases (NUL and
friends reaching PostgreSQL, forged and stale staff tokens), the endpoints of API.md that
are not built yet, and the real uvicorn server's headers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cqcommon.settings import Settings
from cqdev.testing import eventually
from cqgateway.__main__ import staff_command, uvicorn_config
from cqgateway.app import create_app
from cqgateway.routers.not_built import PLANNED
from cqgateway.tokens import ISSUER, STAFF_AUDIENCE
from cqtraffic.query.v1 import query_pb2 as q

pytestmark = pytest.mark.integration

SECRET = "gateway-test-secret-0123456789abcdef-0123456789"


def err(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


def violation_json(place_literal: str) -> bytes:
    """A record body whose ``place`` is the raw JSON string literal given (escapes intact)."""
    return (
        '{"source_system": "cq-camera", "source_record_id": "probe-1", "plate_type": "02",'
        ' "plate_number": "渝A12345", "violation_code": "1625",'
        ' "occurred_at": "2025-03-01T08:30:00+08:00", "place": ' + place_literal + ","
        ' "fine_fen": 20000, "source": "non_site", "procedure": "simple"}'
    ).encode()


async def audit_entries(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str]
) -> list[dict[str, Any]]:
    r = await client.get("/internal/v1/audit", params={"limit": "500"}, headers=supervisor_headers)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


# -- 1. the probe: forbidden characters answer 400 and write nothing ---------------------------
@pytest.mark.parametrize(
    "place",
    [r'"a\u0000b"', r'"\u202e12345"', r'"a\u200bb"', r'"a\ud800b"'],
    ids=["nul", "bidi-override", "zero-width", "lone-surrogate"],
)
async def test_forbidden_characters_in_a_recorded_place_are_400_and_nothing_recorded(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], place: str
) -> None:
    r = await client.post(
        "/internal/v1/violations",
        content=violation_json(place),
        headers=clerk_headers | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert err(r)["code"] == "INVALID_CHARACTERS"
    assert err(r)["details"]["field"] == "body.place"
    assert "RecordViolation" not in fake.requests


@pytest.mark.parametrize(
    "username", [r'"clerk\u000001"', r'"\u202eclerk01"', r'"clerk\u200b01"', r'"clerk\udfff"']
)
async def test_forbidden_characters_in_a_staff_login_are_400_and_audited_without_them(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str], username: str
) -> None:
    r = await client.post(
        "/internal/v1/auth/login",
        content=('{"username": ' + username + ', "password": "sandbox"}').encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert err(r)["code"] == "INVALID_CHARACTERS"
    rows = await audit_entries(client, supervisor_headers)
    refused = [
        e for e in rows if e["path"] == "/internal/v1/auth/login" and e["status_code"] == 400
    ]
    assert refused and refused[0]["subjects"] == [] and refused[0]["staff_id"] is None


@pytest.mark.parametrize(
    "subject", ["vehicle:a\x00b", "\u202evehicle:x", "vehicle:\u200bx"], ids=["nul", "bidi", "zw"]
)
async def test_forbidden_characters_in_the_audit_subject_are_400_and_still_audited(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str], subject: str
) -> None:
    r = await client.get(
        "/internal/v1/audit", params={"subject": subject}, headers=supervisor_headers
    )
    assert r.status_code == 400, r.text
    assert err(r)["code"] == "INVALID_CHARACTERS"
    assert err(r)["details"]["field"] == "query.subject"
    rows = await audit_entries(client, supervisor_headers)
    assert any(e["status_code"] == 400 and e["path"] == "/internal/v1/audit" for e in rows)


async def test_nul_in_a_path_is_audited_percent_encoded(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str]
) -> None:
    r = await client.get("/internal/v1/a%00b", headers=supervisor_headers)
    assert r.status_code == 400
    rows = await audit_entries(client, supervisor_headers)
    assert any(e["path"] == "/internal/v1/a%00b" and e["status_code"] == 400 for e in rows)


# -- 2. staff tokens count only for active accounts, with their current role ------------------
def _staff_token(sub: str, role: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": role, "typ": "staff", "iss": ISSUER, "aud": STAFF_AUDIENCE,
              "iat": now, "exp": now + 600, "jti": "j"}  # fmt: skip
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_a_token_for_a_staff_account_that_does_not_exist_is_401(
    client: httpx.AsyncClient,
) -> None:
    # Signed with the real secret (an old token, or one forged with a leaked secret) for a
    # "supervisor" nobody created: it must not read the audit trail.
    headers = {"Authorization": f"Bearer {_staff_token('ghost77', 'supervisor')}"}
    r = await client.get("/internal/v1/audit", headers=headers)
    assert r.status_code == 401
    assert err(r)["code"] == "TOKEN_INVALID"
    assert err(r)["details"]["reason"] == "account_not_active"


async def test_a_disabled_account_s_token_stops_working_within_the_ttl(
    gateway_factory: Any, fake: Any, settings: Settings
) -> None:
    async with gateway_factory(staff_account_check_ttl_s=0.3) as (_app, client):
        login = await client.post(
            "/internal/v1/auth/login", json={"username": "clerk01", "password": "sandbox"}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        fake.script("StaffGetLicence", lambda _req: q.LookupResponse())
        params = {"licence_no": "500103199001011232"}
        r = await client.get("/internal/v1/licences", params=params, headers=headers)
        assert r.status_code == 200, r.text
        assert await staff_command(settings, "disable", "clerk01")
        try:

            async def refused() -> httpx.Response | None:
                r = await client.get("/internal/v1/licences", params=params, headers=headers)
                return r if r.status_code == 401 else None

            r = await eventually(refused, timeout_s=5, interval_s=0.05)
            assert err(r)["details"]["reason"] == "account_not_active"
            again = await client.post(
                "/internal/v1/auth/login", json={"username": "clerk01", "password": "sandbox"}
            )
            assert again.status_code == 401  # no new token either
        finally:
            assert await staff_command(settings, "enable", "clerk01")
        assert not await staff_command(settings, "disable", "nobody-here")


async def test_a_demoted_supervisor_s_token_loses_the_supervisor_role(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(staff_account_check_ttl_s=0.3) as (app, client):
        staff = app.state.gateway.staff
        await staff.upsert("super42", "supervisor", "pw-42")
        login = await client.post(
            "/internal/v1/auth/login", json={"username": "super42", "password": "pw-42"}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        assert (await client.get("/internal/v1/audit", headers=headers)).status_code == 200
        await staff.upsert("super42", "clerk", "pw-42")

        async def forbidden() -> httpx.Response | None:
            r = await client.get("/internal/v1/audit", headers=headers)
            return r if r.status_code == 403 else None

        r = await eventually(forbidden, timeout_s=5, interval_s=0.05)
        assert err(r)["code"] == "FORBIDDEN"


# -- 9. the contract's endpoints that are not built yet ----------------------------------------
#: API.md's endpoints (method, path template), as listed there.
API_MD_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET", "/healthz"), ("GET", "/readyz"),
    ("POST", "/api/v1/auth/alipay"), ("GET", "/api/v1/me"), ("GET", "/api/v1/violations"),
    ("POST", "/api/v1/violations/lookup/vehicle"), ("POST", "/api/v1/violations/lookup/licence"),
    ("GET", "/api/v1/violations/{violation_id}"),
    ("POST", "/api/v1/violations/{violation_id}/handlings"),
    ("POST", "/api/v1/handlings/{handling_id}/verifications/{step}/complete"),
    ("POST", "/api/v1/handlings/{handling_id}/submit"), ("GET", "/api/v1/handlings/{handling_id}"),
    ("GET", "/api/v1/decisions/{decision_no}"), ("POST", "/api/v1/payments"),
    ("GET", "/api/v1/payments/{payment_id}"), ("GET", "/api/v1/payments/{payment_id}/receipt.pdf"),
    ("POST", "/api/v1/payments/{payment_id}/feedback"), ("POST", "/api/v1/follows/vehicles"),
    ("POST", "/api/v1/follow-requests/{request_id}/sms-code"),
    ("GET", "/api/v1/follow-requests/incoming"),
    ("POST", "/api/v1/follow-requests/{request_id}/approve"),
    ("POST", "/api/v1/follow-requests/{request_id}/decline"), ("GET", "/api/v1/follows"),
    ("DELETE", "/api/v1/follows/vehicles/{follow_id}"),
    ("DELETE", "/api/v1/followers/{follower_id}"), ("POST", "/api/v1/follows/licences"),
    ("DELETE", "/api/v1/follows/licences/{follow_id}"), ("POST", "/api/v1/alipay/notify"),
    ("POST", "/internal/v1/auth/login"),
    ("GET", "/internal/v1/vehicles"), ("GET", "/internal/v1/licences"),
    ("POST", "/internal/v1/violations"),
    ("POST", "/internal/v1/violations/{violation_id}/dispute"),
    ("POST", "/internal/v1/violations/{violation_id}/undispute"),
    ("POST", "/internal/v1/violations/{violation_id}/handle"),
    ("POST", "/internal/v1/payments/counter"), ("GET", "/internal/v1/refunds"),
    ("POST", "/internal/v1/refunds/{refund_id}/approve"),
    ("GET", "/internal/v1/decisions/{decision_no}/notice.pdf"),
    ("GET", "/internal/v1/reconciliation/{date}"), ("GET", "/internal/v1/audit"),
)  # fmt: skip

_SAMPLE = {"date": "2025-03-01", "decision_no": "5001031234567890", "step": "handler"}


def _concrete(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            path = path.replace(part, _SAMPLE.get(name, "id-1"))
    return path


async def test_every_api_md_endpoint_is_in_the_contract_and_unbuilt_ones_answer_501(
    app: Any,
    client: httpx.AsyncClient,
    fake: Any,
    supervisor_headers: dict[str, str],
) -> None:
    paths = app.openapi()["paths"]
    for method, path in API_MD_ENDPOINTS:
        assert method.lower() in paths.get(path, {}), (method, path)
    planned = {(p.method, p.path) for p in PLANNED}
    assert planned <= set(API_MD_ENDPOINTS)
    fake.script("ResolveUser", lambda _req: q.ResolveUserResponse(person_id="p-1"))
    login = await client.post("/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"})
    user_headers = {"Authorization": f"Bearer {login.json()['token']}"}
    for method, path in API_MD_ENDPOINTS:
        if (method, path) not in planned:
            continue
        url = _concrete(path)
        if path.startswith("/internal/"):
            anonymous = await client.request(method, url)
            assert anonymous.status_code == 401, (method, path)
            r = await client.request(method, url, headers=supervisor_headers)
        elif path == "/api/v1/alipay/notify":  # Alipay signs its notifications: no token
            r = await client.request(method, url, data={"notify_id": "n-1"})
        else:
            anonymous = await client.request(method, url)
            assert anonymous.status_code == 401, (method, path)
            r = await client.request(method, url, headers=user_headers)
        assert r.status_code == 501, (method, path, r.text)
        assert err(r)["code"] == "NOT_IMPLEMENTED"


async def test_refund_approval_is_for_supervisors(
    client: httpx.AsyncClient, clerk_headers: dict[str, str]
) -> None:
    r = await client.post("/internal/v1/refunds/r-1/approve", headers=clerk_headers)
    assert r.status_code == 403


# -- 4. the real server: no banner ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The gateway under uvicorn configured exactly as ``python -m cqgateway serve`` does
    (lifespan off: /healthz needs no backend)."""
    import uvicorn

    port = _free_port()
    config_settings = settings.model_copy(update={"gateway_port": port})
    server = uvicorn.Server(
        uvicorn_config(create_app(config_settings), config_settings, lifespan="off")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, timeout_s=10, interval_s=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_the_real_server_sends_no_server_banner_and_the_security_headers(
    settings: Settings,
) -> None:
    async with served(settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        health = await http.get("/healthz")
        api = await http.get("/api/v1/me")
    assert health.status_code == 200
    assert "server" not in health.headers and "server" not in api.headers
    assert health.headers["x-content-type-options"] == "nosniff"
    assert api.status_code == 401 and api.headers["cache-control"] == "no-store"
