"""Gateway hardening without I/O: the string check of URLs and bodies, no slash redirects,
security headers, the refusal to start with a known TOKEN_SECRET, token issuer/audience,
the staff-account cache, the error-code table and the truthful /openapi.json.

Run on an app whose lifespan has not run, so nothing here can reach a backend: whatever
is refused is refused before any service or database would see it.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import AsyncIterator
from typing import Any

import cqgateway
import httpx
import jwt
import pytest
from cqcommon.errors import CATALOGUE, DomainError, ErrorKind, ErrorSpec
from cqcommon.settings import Settings
from cqgateway import errors as gateway_errors
from cqgateway.app import InsecureSecretError, create_app
from cqgateway.errors import error_response
from cqgateway.openapi import X_ERROR_CODES
from cqgateway.staff import StaffAccount, StaffAccountCache
from cqgateway.tokens import ISSUER, STAFF_AUDIENCE, USER_AUDIENCE, TokenCodec

SECRET = "unit-secret-" + "x" * 40


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(token_secret=SECRET))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        yield c


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["code"])


# -- 1. forbidden characters in the URL and in bodies ----------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/internal/v1/audit?subject=vehicle%3Aa%00b",  # the probe: NUL reached PostgreSQL
        "/internal/v1/audit?subject=%E2%80%AEvehicle",  # U+202E right-to-left override
        "/internal/v1/audit?sub%00ject=x",  # in a parameter's name
        "/api/v1/violations?vehicle_id=a%E2%80%8Bb",  # U+200B zero-width space
        "/api/v1/violations/ab%00cd",  # in a path parameter
        "/healthz?x=%1b[31m",  # escape sequence, even where nothing reads it
    ],
)
async def test_forbidden_characters_in_the_url_are_400_before_authentication(
    client: httpx.AsyncClient, url: str
) -> None:
    r = await client.get(url)
    assert r.status_code == 400, r.text
    assert error_code(r) == "INVALID_CHARACTERS"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_clean_unicode_in_the_url_passes_the_string_check(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/internal/v1/audit", params={"subject": "plate:02:渝A12345"})
    assert r.status_code == 401  # reached authentication


@pytest.mark.parametrize(
    ("raw_value", "where"),
    [
        (r'"clerk\u000001"', "body.username"),  # NUL (the probe)
        (r'"\u202eclerk01"', "body.username"),  # bidi override
        (r'"clerk\u200b01"', "body.username"),  # zero-width space
        (r'"clerk\ud80001"', "body.username"),  # lone surrogate escape
        (r'["clerk\u000001"]', "body.username[0]"),  # nested, although the type is wrong
    ],
)
async def test_forbidden_characters_in_a_body_are_400_invalid_characters(
    client: httpx.AsyncClient, raw_value: str, where: str
) -> None:
    body = '{"username": ' + raw_value + ', "password": "sandbox"}'
    r = await client.post(
        "/internal/v1/auth/login",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert error_code(r) == "INVALID_CHARACTERS"
    assert r.json()["error"]["details"]["field"] == where


async def test_a_forbidden_character_in_a_body_key_is_not_echoed(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001", "x\u202e": 1}
    )
    assert r.status_code == 400
    assert error_code(r) == "INVALID_CHARACTERS"
    assert "\u202e" not in r.text and "\\u202e" not in r.text


# -- 3. no redirects ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/api/v1/me/", "/internal/v1/audit/", "/healthz/", "/api/v1/violations/"]
)
async def test_trailing_slash_is_404_without_redirect_even_with_a_hostile_host(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path, headers={"host": "evil.example"})
    assert r.status_code == 404
    assert error_code(r) == "NOT_FOUND"
    assert "location" not in r.headers


# -- 4. headers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/me", 401),
        ("GET", "/internal/v1/audit", 401),
        ("GET", "/api/v1/nothing-here", 404),
        ("POST", "/api/v1/alipay/notify", 400),  # not a form: plain-text `fail`
    ],
)
async def test_api_responses_are_no_store_and_nosniff(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    r = await client.request(method, path)
    assert r.status_code == status
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_every_response_is_nosniff(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/openapi.json", "/readyz"):
        r = await client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path


async def test_middleware_answers_carry_the_security_headers() -> None:
    # 413 comes from the body-size middleware, before any route.
    app = create_app(Settings(token_secret=SECRET, max_body_bytes=16))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        r = await c.post("/api/v1/auth/alipay", json={"auth_code": "x" * 64})
    assert r.status_code == 413
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


# -- 2. secrets and tokens ------------------------------------------------------------------
@pytest.mark.parametrize(
    "secret",
    [Settings.model_fields["token_secret"].default, "short-but-not-default-31-bytes!"],
    ids=["development-default", "31-bytes"],
)
def test_outside_sandbox_the_gateway_refuses_a_known_or_short_token_secret(secret: str) -> None:
    assert len(b"short-but-not-default-31-bytes!") == 31
    with pytest.raises(InsecureSecretError, match="TOKEN_SECRET"):
        create_app(Settings(sandbox_mode=False, token_secret=secret))


def test_outside_sandbox_a_strong_token_secret_starts_and_cursor_secret_is_not_its_business() -> (
    None
):
    create_app(Settings(sandbox_mode=False, token_secret="s" * 32))  # CURSOR_SECRET default
    create_app(Settings(sandbox_mode=True))  # sandbox: the development secret is fine


def test_outside_sandbox_a_short_previous_token_secret_is_refused_and_a_strong_one_starts() -> None:
    with pytest.raises(InsecureSecretError, match="TOKEN_SECRET_PREVIOUS"):
        create_app(Settings(sandbox_mode=False, token_secret="s" * 32, token_secret_previous="p"))
    create_app(Settings(sandbox_mode=False, token_secret="s" * 32, token_secret_previous="p" * 32))


def _codec() -> TokenCodec:
    return TokenCodec(SECRET, user_ttl_s=60, staff_ttl_s=60)


def test_tokens_carry_issuer_and_their_own_audience() -> None:
    user = jwt.decode(
        _codec().issue_user("u", "p").token, SECRET, algorithms=["HS256"], audience=USER_AUDIENCE
    )
    staff = jwt.decode(
        _codec().issue_staff("clerk01", "clerk").token,
        SECRET,
        algorithms=["HS256"],
        audience=STAFF_AUDIENCE,
    )
    assert user["iss"] == staff["iss"] == ISSUER
    assert user["aud"] != staff["aud"]


def _signed(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "u", "pid": "", "typ": "user", "iss": ISSUER, "aud": USER_AUDIENCE,
            "iat": now, "exp": now + 60, "jti": "j"}  # fmt: skip
    payload = {k: v for k, v in (base | claims).items() if v is not None}
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [{"iss": "someone-else"}, {"iss": None}, {"aud": "another-api"}, {"aud": None},
     {"aud": STAFF_AUDIENCE}],
    ids=["wrong-iss", "no-iss", "wrong-aud", "no-aud", "staff-aud"],
)  # fmt: skip
def test_wrong_or_missing_issuer_or_audience_is_token_invalid(claims: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as info:
        _codec().verify_user(_signed(**claims))
    assert info.value.code == "TOKEN_INVALID"


class FakeAccounts:
    def __init__(self) -> None:
        self.accounts: dict[str, StaffAccount] = {}
        self.asked = 0

    async def active_account(self, staff_id: str) -> StaffAccount | None:
        self.asked += 1
        return self.accounts.get(staff_id)


async def test_staff_account_cache_trusts_an_answer_for_its_ttl_only() -> None:
    now = [100.0]
    accounts = FakeAccounts()
    accounts.accounts["clerk01"] = StaffAccount("clerk01", "clerk")
    cache = StaffAccountCache(accounts, ttl_s=5, clock=lambda: now[0])
    assert await cache.active_account("clerk01") == StaffAccount("clerk01", "clerk")
    del accounts.accounts["clerk01"]  # disabled
    now[0] += 4.9
    assert await cache.active_account("clerk01") is not None  # still trusted
    now[0] += 0.2
    assert await cache.active_account("clerk01") is None  # asked again: gone
    assert await cache.active_account("ghost") is None
    assert accounts.asked == 3


# -- 8. only catalogued codes leave the gateway ---------------------------------------------
def _gateway_specs() -> list[tuple[str, ErrorSpec]]:
    found: list[tuple[str, ErrorSpec]] = []
    for info in pkgutil.walk_packages(cqgateway.__path__, "cqgateway."):
        if info.name == "cqgateway.__main__":
            continue
        module = importlib.import_module(info.name)
        found += [
            (f"{info.name}.{name}", value)
            for name, value in vars(module).items()
            if isinstance(value, ErrorSpec)
        ]
    return found


def test_every_code_the_gateway_can_produce_is_in_the_one_table() -> None:
    specs = _gateway_specs()
    assert len(specs) > 20  # the scan sees the routers' and middlewares' codes
    for where, spec in specs:
        assert CATALOGUE.get(spec.code) is spec, where
    assert set(gateway_errors.STATUS_BY_CODE) <= set(CATALOGUE)
    for spec in gateway_errors._SPEC_BY_HTTP_STATUS.values():
        assert CATALOGUE[spec.code] is spec
    schema = create_app(Settings(token_secret=SECRET)).openapi()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert set(operation[X_ERROR_CODES]) <= set(CATALOGUE), (method, path)


def test_an_uncatalogued_code_from_a_service_is_answered_as_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    invented = ErrorSpec("BRAND_NEW_RULE", ErrorKind.CONFLICT, "新规则。", "New rule.")
    # What cqcommon.grpc_client rebuilds from a service's error-bin trailer.
    crossed = DomainError.from_bytes(DomainError(invented, details={"x": 1}).to_bytes())
    response = error_response(crossed)
    assert response.status_code == 500
    assert b'"INTERNAL_ERROR"' in response.body and b"BRAND_NEW_RULE" not in response.body
    assert "BRAND_NEW_RULE" in caplog.text


# -- 7. the contract tells the truth -----------------------------------------------------------
#: The one operation that is not JSON in and out (a form in, plain text out, as Alipay wants).
NOTIFY = "/api/v1/alipay/notify"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings(token_secret=SECRET)).openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_response_is_the_envelope_and_422_is_not_fastapis(
    openapi: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in str(openapi)
    assert "ValidationError" not in openapi["components"]["schemas"]
    for method, path, operation in _operations(openapi):
        for status, response in operation["responses"].items():
            if status.startswith("2") or (path == "/readyz" and status == "503"):
                continue
            if path == NOTIFY and set(response["content"]) == {"text/plain"}:
                continue  # Alipay's notification answers plain text (checked below)
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
    ready = openapi["paths"]["/readyz"]["get"]["responses"]["503"]
    assert ready["content"]["application/json"]["schema"]["$ref"].endswith("/ReadinessOut")


def test_statuses_follow_from_what_each_operation_is_made_of(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        statuses = set(operation["responses"])
        assert {"400", "500"} <= statuses, (method, path)
        if "security" in operation:
            assert "401" in statuses, (method, path)
        if path == NOTIFY:
            # a form, not JSON: refused with a plain-text `fail` (400), never 415/422
            assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
            assert {"413", "400", "503"} <= statuses and not {"415", "422"} & statuses
            assert set(operation["responses"]["503"]["content"]) == {"text/plain"}
        elif "requestBody" in operation:
            assert {"413", "415", "422"} <= statuses, (method, path)
        if operation.get("parameters"):
            assert "422" in statuses, (method, path)
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in statuses, (method, path)
        if path.startswith(("/api/", "/internal/")):
            assert "503" in statuses, (method, path)
        if path.startswith("/internal/"):
            assert "AUDIT_UNAVAILABLE" in operation["responses"]["503"]["description"]
    audit = openapi["paths"]["/internal/v1/audit"]["get"]["responses"]
    assert "403" in audit  # supervisor only
    lookup = openapi["paths"]["/api/v1/violations/lookup/vehicle"]["post"]["responses"]
    assert {"404", "429"} <= set(lookup) and "Retry-After" in lookup["429"]["headers"]
    record = openapi["paths"]["/internal/v1/violations"]["post"]["responses"]
    assert {"200", "201", "409"} <= set(record)
    listing = openapi["paths"]["/api/v1/violations"]["get"]
    assert "INVALID_CURSOR" in listing[X_ERROR_CODES]
