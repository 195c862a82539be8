"""R-ERR-1: bad input gets a 4xx with a stable code, never a 500 — checked on an app whose
lifespan has not run, so no request here can reach a backend (pure HTTP-layer tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cqcommon.settings import Settings
from cqgateway.app import create_app

LIMIT = 1024


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(max_body_bytes=LIMIT, token_secret="unit-secret-" + "x" * 40))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        yield c


def code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message_zh", "message_en", "details"}
    assert body["error"]["message_zh"] and body["error"]["message_en"]
    return str(body["error"]["code"])


async def test_malformed_json_is_400_malformed_json(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/alipay",
        content=b'{"auth_code": ',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert code(r) == "MALFORMED_JSON"


async def test_non_utf8_body_is_400_malformed_json(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/alipay",
        content=b'{"auth_code": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert code(r) == "MALFORMED_JSON"


async def test_unknown_field_is_422_with_field_errors(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/alipay", json={"auth_code": "sandbox:1", "admin": True})
    assert r.status_code == 422
    assert code(r) == "VALIDATION_FAILED"
    fields = r.json()["error"]["details"]["fields"]
    assert any(f["type"] == "extra_forbidden" and f["loc"][-1] == "admin" for f in fields)


async def test_wrong_type_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/alipay", json={"auth_code": 2088000000000001})
    assert r.status_code == 422
    assert code(r) == "VALIDATION_FAILED"
    assert r.json()["error"]["details"]["fields"][0]["type"] == "string_type"


async def test_missing_body_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/alipay")
    assert r.status_code == 422
    assert code(r) == "VALIDATION_FAILED"


async def test_json_array_instead_of_object_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/alipay", json=["sandbox:2088000000000001"])
    assert r.status_code == 422


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/alipay",
        content=b"auth_code=sandbox%3A2088000000000001",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert code(r) == "UNSUPPORTED_MEDIA_TYPE"


async def test_json_with_charset_and_vendor_json_are_accepted_types(
    client: httpx.AsyncClient,
) -> None:
    for ctype in ("application/json; charset=utf-8", "application/problem+json"):
        r = await client.post(
            "/api/v1/auth/alipay", content=b'{"auth_code": 1}', headers={"content-type": ctype}
        )
        assert r.status_code == 422, ctype  # parsed as JSON, then refused for the wrong type


async def test_oversized_body_with_content_length_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"auth_code": "' + b"a" * (LIMIT * 4) + b'"}'
    r = await client.post(
        "/api/v1/auth/alipay", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert code(r) == "BODY_TOO_LARGE"
    assert r.json()["error"]["details"]["max_bytes"] == LIMIT


async def test_oversized_chunked_body_is_413_and_not_read_to_the_end(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"auth_code": "'
        for _ in range(1000):  # 1000 x 512 B = 500 KiB offered, limit is 1 KiB
            sent += 512
            yield b"a" * 512
        yield b'"}'

    r = await client.post(
        "/api/v1/auth/alipay", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert code(r) == "BODY_TOO_LARGE"
    assert sent < 100 * 512, "the gateway kept reading after the limit"


async def test_chunked_body_under_the_limit_passes_the_size_check(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"auth_code": '
        yield b"7}"

    r = await client.post(
        "/api/v1/auth/alipay", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422  # reached validation: wrong type, not too large


async def test_unknown_route_is_404_not_found(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert code(r) == "NOT_FOUND"


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    r = await client.delete("/api/v1/auth/alipay")
    assert r.status_code == 405
    assert code(r) == "METHOD_NOT_ALLOWED"
    assert "POST" in r.headers["allow"]


async def test_missing_token_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/violations", params={"vehicle_id": "v1"})
    assert r.status_code == 401
    assert code(r) == "UNAUTHENTICATED"
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_non_bearer_authorization_is_401_token_invalid(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/violations",
        params={"vehicle_id": "v1"},
        headers={"Authorization": "Basic Zm9vOmJhcg=="},
    )
    assert r.status_code == 401
    assert code(r) == "TOKEN_INVALID"


async def test_healthz_is_200_without_any_backend(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_before_start_is_503(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"


async def test_openapi_lists_every_catalogued_code(client: httpx.AsyncClient) -> None:
    from cqcommon.errors import CATALOGUE

    r = await client.get("/openapi.json")
    assert r.status_code == 200
    description = r.json()["info"]["description"]
    for error_code in CATALOGUE:
        assert f"`{error_code}`" in description, error_code
    paths = r.json()["paths"]
    for path in ("/api/v1/auth/alipay", "/api/v1/violations", "/internal/v1/violations", "/readyz"):
        assert path in paths
