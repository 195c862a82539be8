"""The gateway against real PostgreSQL and Redis, with ``FakeServices`` (conftest) standing
in for the gRPC services so that the HTTP ↔ gRPC error mapping can be driven exactly."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cqcommon.errors import (
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    SOURCE_RECORD_CONFLICT,
    DomainError,
    ErrorKind,
)
from cqcommon.settings import Settings
from cqdev.testing import error_body, eventually
from cqgateway.tokens import ISSUER, STAFF_AUDIENCE, USER_AUDIENCE
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as q
from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp

pytestmark = pytest.mark.integration

SECRET = "gateway-test-secret-0123456789abcdef-0123456789"


async def user_token(client: httpx.AsyncClient, fake: Any, person_id: str = "p-1") -> str:
    fake.script("ResolveUser", lambda req: q.ResolveUserResponse(person_id=person_id))
    r = await client.post("/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def violation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source_system": "cq-camera",
        "source_record_id": "rec-0001",
        "plate_type": "02",
        "plate_number": "渝A12345",
        "violation_code": "1625",
        "occurred_at": "2025-03-01T08:30:00+08:00",
        "place": "渝中区解放碑",
        "fine_fen": 20000,
        "source": "non_site",
        "procedure": "simple",
    }
    return body | overrides


def recorded(req: adj.RecordViolationRequest, *, created: bool) -> adj.RecordViolationResponse:
    return adj.RecordViolationResponse(
        created=created,
        violation=adj.Violation(
            violation_id="vio-1",
            source_system=req.source_system,
            source_record_id=req.source_record_id,
            vehicle_id="veh-1",
            plate_type=req.plate_type,
            plate_number=req.plate_number,
            violation_code=req.violation_code,
            description_zh="驾驶机动车违反道路交通信号灯通行",
            occurred_at=req.occurred_at,
            place=req.place,
            fine_fen=req.fine_fen,
            points=6,
            source=req.source,
            procedure=req.procedure,
            status=common.VIOLATION_STATUS_UNHANDLED,
        ),
    )


async def audit_rows(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    r = await client.get("/internal/v1/audit", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


# -- health --------------------------------------------------------------------------------
async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200


async def test_readyz_503_names_kafka_when_the_broker_is_down(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["kafka"]
    for name in ("query", "adjudication", "payment", "follow", "postgres", "redis"):
        assert body["checks"][name]["ok"] is True, body


async def test_readyz_200_when_everything_answers_then_503_naming_a_down_service(
    gateway_factory: Any, kafka_bootstrap: str, dead_addr: str
) -> None:
    async with gateway_factory(kafka_bootstrap_servers=kafka_bootstrap) as (_app, client):

        async def ready() -> httpx.Response | None:
            # A freshly started broker may need a moment before metadata works.
            r = await client.get("/readyz")
            return r if r.status_code == 200 else None

        r = await eventually(ready, timeout_s=20, interval_s=0.5)
        assert r.json()["status"] == "ready"
    async with gateway_factory(
        kafka_bootstrap_servers=kafka_bootstrap, payment_service_addr=dead_addr
    ) as (_app, client):
        t0 = time.monotonic()
        r = await client.get("/readyz")
        assert time.monotonic() - t0 < 5
        assert r.status_code == 503
        assert r.json()["failed"] == ["payment"]


async def test_readyz_in_sandbox_mode_is_503_naming_the_roster_until_it_is_loaded(
    gateway_factory: Any, kafka_bootstrap: str, fake: Any
) -> None:
    """R-SBX-1: a sandbox gateway is not ready before the sandbox roster is loaded (the
    registry's GetSandboxRosterStatus); once it is, the same gateway answers 200."""
    fake.roster_loaded = False
    async with gateway_factory(kafka_bootstrap_servers=kafka_bootstrap) as (_app, client):

        async def only_the_roster_missing() -> httpx.Response | None:
            r = await client.get("/readyz")  # a fresh broker may need a moment, as above
            return r if r.json()["failed"] == ["sandbox_roster"] else None

        r = await eventually(only_the_roster_missing, timeout_s=20, interval_s=0.5)
        assert r.status_code == 503
        assert r.json()["status"] == "not_ready"
        assert r.json()["checks"]["sandbox_roster"] == {
            "ok": False,
            "detail": "not loaded yet (python -m cqregistry load-sandbox)",
        }
        fake.roster_loaded = True  # "not loaded" is never cached: the next probe sees it
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["sandbox_roster"]["ok"] is True


async def test_readiness_outside_sandbox_mode_has_no_roster_check(
    gateway_factory: Any, fake: Any
) -> None:
    # a gateway outside sandbox mode needs real Alipay keys: the checker is built on the
    # backends of a sandbox app instead, as the app builds it outside sandbox mode
    from cqgateway.health import ReadinessChecker

    fake.roster_loaded = False
    async with gateway_factory() as (app, _client):
        backends = app.state.gateway.backends
        results = await ReadinessChecker(backends, sandbox_mode=False).check()
        assert "sandbox_roster" not in results
        assert results["query"].ok and results["postgres"].ok
        assert "GetSandboxRosterStatus" not in fake.requests
        results = await ReadinessChecker(backends, sandbox_mode=True).check()
        assert results["sandbox_roster"].ok is False


# -- user login and tokens -------------------------------------------------------------------
async def test_sandbox_login_round_trip(client: httpx.AsyncClient, fake: Any) -> None:
    token = await user_token(client, fake, person_id="person-42")
    assert fake.requests["ResolveUser"][0].alipay_user_id == "2088000000000001"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=USER_AUDIENCE)
    assert claims["sub"] == "2088000000000001"
    assert claims["pid"] == "person-42"
    assert claims["typ"] == "user"
    assert claims["exp"] > claims["iat"]
    fake.script("ListViolations", lambda req: q.ListViolationsResponse())
    r = await client.get(
        "/api/v1/violations",
        params={"vehicle_id": "veh-1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"violations": [], "next_cursor": None}
    caller = fake.requests["ListViolations"][0].caller
    assert (caller.user_id, caller.person_id) == ("2088000000000001", "person-42")


async def test_login_of_a_user_with_no_registry_record_r_usr_1(
    client: httpx.AsyncClient, fake: Any
) -> None:
    token = await user_token(client, fake, person_id="")
    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience=USER_AUDIENCE)["pid"] == ""


@pytest.mark.parametrize(
    "auth_code", ["2088000000000001", "sandbox:123", "sandbox:2088abc000000001", "x"]
)
async def test_invalid_auth_code_is_401(
    client: httpx.AsyncClient, fake: Any, auth_code: str
) -> None:
    r = await client.post("/api/v1/auth/alipay", json={"auth_code": auth_code})
    assert r.status_code == 401
    assert error_body(r)["code"] == "AUTH_CODE_INVALID"
    assert "ResolveUser" not in fake.requests


def _forge(claims: dict[str, Any], secret: str = SECRET) -> str:
    now = int(time.time())
    base = {
        "sub": "2088000000000001",
        "pid": "p-1",
        "typ": "user",
        "iss": ISSUER,
        "aud": USER_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": "j",
    }
    return jwt.encode(base | claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_forge({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 60}), "expired"),
        (_forge({}, secret="someone-else-secret-0123456789abcdef-xyz"), "invalid"),
        (_forge({"typ": "staff", "role": "supervisor"}), "wrong_token_type"),
        (_forge({"aud": STAFF_AUDIENCE}), "wrong_token_type"),
        (_forge({"iss": "someone-else"}), "invalid"),
        (_forge({"aud": "another-api"}), "wrong_token_type"),
        ("not-a-jwt", "invalid"),
    ],
    ids=["expired", "forged", "staff-typ", "staff-aud", "wrong-iss", "wrong-aud", "garbage"],
)
async def test_bad_user_tokens_are_401(client: httpx.AsyncClient, token: str, reason: str) -> None:
    r = await client.get(
        "/api/v1/violations",
        params={"vehicle_id": "v"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    assert error_body(r)["code"] == "TOKEN_INVALID"
    assert error_body(r)["details"]["reason"] == reason
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_alg_none_token_is_refused(client: httpx.AsyncClient) -> None:
    token = jwt.encode(
        {"sub": "2088000000000001", "pid": "", "typ": "user", "iat": 1, "exp": 2**31, "jti": "j"},
        key="",
        algorithm="none",
    )
    r = await client.get(
        "/api/v1/violations",
        params={"vehicle_id": "v"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401


async def test_user_token_on_the_counter_api_is_401(client: httpx.AsyncClient, fake: Any) -> None:
    token = await user_token(client, fake)
    r = await client.post(
        "/internal/v1/violations",
        json=violation_body(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    assert error_body(r)["details"]["reason"] == "wrong_token_type"
    assert "RecordViolation" not in fake.requests


async def test_list_violations_needs_exactly_one_subject(
    client: httpx.AsyncClient, fake: Any
) -> None:
    headers = {"Authorization": f"Bearer {await user_token(client, fake)}"}
    for params in ({}, {"vehicle_id": "a", "licence_id": "b"}):
        r = await client.get("/api/v1/violations", params=params, headers=headers)
        assert r.status_code == 422
        assert error_body(r)["code"] == "VALIDATION_FAILED"
    r = await client.get(
        "/api/v1/violations", params={"vehicle_id": "a", "status": "bogus"}, headers=headers
    )
    assert r.status_code == 422
    r = await client.get(
        "/api/v1/violations", params={"vehicle_id": "a", "limit": "0"}, headers=headers
    )
    assert r.status_code == 422
    assert "ListViolations" not in fake.requests


async def test_list_violations_maps_the_view_to_json(client: httpx.AsyncClient, fake: Any) -> None:
    headers = {"Authorization": f"Bearer {await user_token(client, fake)}"}
    occurred = Timestamp()
    occurred.FromDatetime(datetime(2025, 3, 1, 0, 30, tzinfo=UTC))
    view = q.ViolationView(
        violation_id="vio-1",
        vehicle_id="veh-1",
        plate_type=common.PLATE_TYPE_SMALL_NEV,
        plate_number="渝AD12345",
        occurred_at=occurred,
        place="解放碑",
        violation_code="1039",
        description_zh="违停",
        fine_fen=20000,
        points=0,
        source=common.VIOLATION_SOURCE_NON_SITE,
        procedure=common.PROCEDURE_SIMPLE,
        status=common.VIOLATION_STATUS_HANDLED_UNPAID,
        decision_no="5001031234567890",
        decision_date=common.Date(year=2025, month=3, day=5),
        due_date=common.Date(year=2025, month=4, day=4),
        late_fee_fen=0,
        amount_due_fen=20000,
        online_handling=common.OnlineHandling(
            availability=common.OnlineHandling.AVAILABILITY_REFUSED,
            route="counter",
            reason_code="ALREADY_HANDLED",
            reason_zh="已处理",
            reason_en="Already handled",
        ),
    )
    fake.script(
        "ListViolations", lambda req: q.ListViolationsResponse(violations=[view], next_cursor="c2")
    )
    r = await client.get(
        "/api/v1/violations",
        params={"licence_id": "lic-1", "status": "handled_unpaid", "cursor": "c1", "limit": "5"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    sent = fake.requests["ListViolations"][0]
    assert sent.WhichOneof("subject") == "licence_id" and sent.licence_id == "lic-1"
    assert sent.status == common.VIOLATION_STATUS_HANDLED_UNPAID
    assert (sent.page.page_size, sent.page.cursor) == (5, "c1")
    body = r.json()
    assert body["next_cursor"] == "c2"
    v = body["violations"][0]
    assert v["plate_type"] == "52"
    assert v["occurred_at"] == "2025-03-01T08:30:00+08:00"
    assert (v["source"], v["procedure"], v["status"]) == ("non_site", "simple", "handled_unpaid")
    assert v["decision_date"] == "2025-03-05" and v["due_date"] == "2025-04-04"
    assert v["amount_due_fen"] == 20000 and v["licence_id"] is None
    assert v["online_handling"] == {
        "allowed": False,
        "availability": "refused",
        "route": "counter",
        "reason_code": "ALREADY_HANDLED",
        "reason": "已处理",
        "reason_en": "Already handled",
        "reasons": [],
    }


# -- gRPC status + error-bin → HTTP ------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (DomainError(NOT_FOUND), 404, None),
        (DomainError(SOURCE_RECORD_CONFLICT), 409, None),
        (DomainError(RATE_LIMITED, details={"retry_after_s": 30}), 429, "30"),
        (DomainError(SERVICE_UNAVAILABLE, details={"retry_after_s": 1799.2}), 503, "1800"),
        (DomainError(FORBIDDEN), 403, None),
    ],
    ids=["not-found", "conflict", "rate-limited", "maintenance", "forbidden"],
)
async def test_remote_domain_errors_keep_code_and_map_status(
    client: httpx.AsyncClient, fake: Any, error: DomainError, status: int, retry_after: str | None
) -> None:
    headers = {"Authorization": f"Bearer {await user_token(client, fake)}"}

    def boom(_req: Any) -> Any:
        raise error

    fake.script("ListViolations", boom)
    r = await client.get("/api/v1/violations", params={"vehicle_id": "x"}, headers=headers)
    assert r.status_code == status
    body = error_body(r)
    assert body["code"] == error.code
    assert body["message_zh"] == error.message_zh and body["message_en"] == error.message_en
    assert r.headers.get("retry-after") == retry_after


async def test_an_uncatalogued_remote_code_is_internal_error_and_logged(
    client: httpx.AsyncClient, fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Only codes of the one table leave the gateway: a service that invents one has a bug.
    from cqcommon.errors import ErrorSpec

    spec = ErrorSpec("BRAND_NEW_RULE", ErrorKind.CONFLICT, "新规则。", "New rule.")
    headers = {"Authorization": f"Bearer {await user_token(client, fake)}"}

    def boom(_req: Any) -> Any:
        raise DomainError(spec, details={"x": 1})

    fake.script("ListViolations", boom)
    with caplog.at_level(logging.ERROR, logger="cqgateway.errors"):
        r = await client.get("/api/v1/violations", params={"vehicle_id": "x"}, headers=headers)
    assert r.status_code == 500
    assert error_body(r)["code"] == "INTERNAL_ERROR"
    assert "BRAND_NEW_RULE" not in r.text and "新规则" not in r.text
    assert "BRAND_NEW_RULE" in caplog.text


async def test_unscripted_or_crashing_service_is_a_clean_5xx(
    client: httpx.AsyncClient, fake: Any
) -> None:
    headers = {"Authorization": f"Bearer {await user_token(client, fake)}"}

    def crash(_req: Any) -> Any:
        raise RuntimeError("bug in the service")

    fake.script("ListViolations", crash)
    r = await client.get("/api/v1/violations", params={"vehicle_id": "x"}, headers=headers)
    assert r.status_code == 500
    assert error_body(r)["code"] == "INTERNAL_ERROR"
    assert "bug in the service" not in r.text


async def test_unreachable_service_is_503(gateway_factory: Any, dead_addr: str) -> None:
    async with gateway_factory(query_service_addr=dead_addr) as (_app, client):
        r = await client.post("/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"})
        assert r.status_code == 503
        assert error_body(r)["code"] == "SERVICE_UNAVAILABLE"


# -- staff login, roles and audit --------------------------------------------------------------
async def test_staff_login_failures_look_the_same(client: httpx.AsyncClient) -> None:
    wrong = await client.post(
        "/internal/v1/auth/login", json={"username": "clerk01", "password": "nope"}
    )
    unknown = await client.post(
        "/internal/v1/auth/login", json={"username": "ghost99", "password": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert error_body(wrong) == error_body(unknown)
    assert error_body(wrong)["code"] == "STAFF_LOGIN_FAILED"


async def test_staff_token_claims(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/internal/v1/auth/login", json={"username": "super01", "password": "sandbox"}
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["staff_id"], body["role"]) == ("super01", "supervisor")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience=STAFF_AUDIENCE)
    assert (claims["typ"], claims["role"], claims["sub"]) == ("staff", "supervisor", "super01")
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == Settings().staff_token_ttl_s


async def test_staff_token_on_the_user_api_is_401(
    client: httpx.AsyncClient, clerk_headers: dict[str, str]
) -> None:
    r = await client.get("/api/v1/violations", params={"vehicle_id": "v"}, headers=clerk_headers)
    assert r.status_code == 401
    assert error_body(r)["details"]["reason"] == "wrong_token_type"


async def test_clerk_on_a_supervisor_endpoint_is_403_and_audited(
    client: httpx.AsyncClient, clerk_headers: dict[str, str], supervisor_headers: dict[str, str]
) -> None:
    r = await client.get(
        "/internal/v1/audit", params={"subject": "vehicle:zzz"}, headers=clerk_headers
    )
    assert r.status_code == 403
    assert error_body(r)["code"] == "FORBIDDEN"
    rows = await audit_rows(client, supervisor_headers, staff_id="clerk01")
    denied = [
        row for row in rows if row["path"] == "/internal/v1/audit" and row["status_code"] == 403
    ]
    assert denied, rows
    assert denied[0]["role"] == "clerk"
    assert denied[0]["query"] == "subject=vehicle%3Azzz"


async def test_unauthenticated_internal_call_is_401_and_audited(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str]
) -> None:
    r = await client.post("/internal/v1/violations", json=violation_body(source_record_id="anon-1"))
    assert r.status_code == 401
    # 401 happens before the route runs, so no subject is known: look it up by path.
    rows = await audit_rows(client, supervisor_headers)
    assert any(
        row["path"] == "/internal/v1/violations"
        and row["status_code"] == 401
        and row["staff_id"] is None
        for row in rows
    )


async def test_record_violation_201_then_200_on_replay_and_audited(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    supervisor_headers: dict[str, str],
) -> None:
    seen: set[str] = set()

    def record(req: adj.RecordViolationRequest) -> adj.RecordViolationResponse:
        created = req.source_record_id not in seen
        seen.add(req.source_record_id)
        return recorded(req, created=created)

    fake.script("RecordViolation", record)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = clerk_headers | {"traceparent": traceparent}
    first = await client.post(
        "/internal/v1/violations", json=violation_body(plate_number=" 渝a12345 "), headers=headers
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/internal/v1/violations", json=violation_body(), headers=clerk_headers
    )
    assert again.status_code == 200
    assert first.json() == again.json()
    v = first.json()
    assert v["plate_number"] == "渝A12345" and v["plate_type"] == "02"
    assert v["occurred_at"] == "2025-03-01T08:30:00+08:00"
    assert (v["source"], v["procedure"], v["status"], v["fine_fen"]) == (
        "non_site",
        "simple",
        "unhandled",
        20000,
    )
    sent = fake.requests["RecordViolation"][0]
    assert sent.caller.staff_id == "clerk01" and sent.caller.staff_role == "clerk"
    assert sent.plate_number == "渝A12345" and sent.plate_type == common.PLATE_TYPE_SMALL_CAR
    assert sent.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 1, 0, 30, tzinfo=UTC)
    rows = await audit_rows(client, supervisor_headers, subject="vehicle:veh-1")
    mine = [row for row in rows if row["trace_id"] == "0af7651916cd43dd8448eb211c80319c"]
    assert len(mine) == 1, rows
    assert mine[0]["status_code"] == 201 and mine[0]["staff_id"] == "clerk01"
    assert {"plate:02:渝A12345", "violation:vio-1", "vehicle:veh-1"} <= set(mine[0]["subjects"])


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"plate_number": "ABC"}, 400, "INVALID_PLATE_NUMBER"),
        ({"plate_type": "52"}, 400, "INVALID_PLATE_NUMBER"),  # ordinary plate with an NEV type
        ({"violation_code": "12a"}, 400, "INVALID_VIOLATION_CODE"),
        ({"licence_no": "123"}, 400, "INVALID_ID_NUMBER"),
        ({"decision_no": "12"}, 400, "INVALID_DECISION_NO"),
        ({"plate_type": "03"}, 422, "VALIDATION_FAILED"),
        ({"fine_fen": 0}, 422, "VALIDATION_FAILED"),
        ({"fine_fen": "200"}, 422, "VALIDATION_FAILED"),
        ({"fine_fen": 12.5}, 422, "VALIDATION_FAILED"),
        ({"occurred_at": "2025-03-01T08:30:00"}, 422, "VALIDATION_FAILED"),
        ({"occurred_at": 1740789000}, 422, "VALIDATION_FAILED"),
        ({"source": "camera"}, 422, "VALIDATION_FAILED"),
        ({"decision_date": "2025-02-30"}, 422, "VALIDATION_FAILED"),
        ({"surprise": 1}, 422, "VALIDATION_FAILED"),
    ],
)
async def test_record_violation_bad_input(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str],
    overrides: dict[str, Any], status: int, code: str,
) -> None:  # fmt: skip
    r = await client.post(
        "/internal/v1/violations", json=violation_body(**overrides), headers=clerk_headers
    )
    assert r.status_code == status, r.text
    assert error_body(r)["code"] == code
    assert "RecordViolation" not in fake.requests


async def test_oversized_internal_body_is_413_and_audited(
    client: httpx.AsyncClient, clerk_headers: dict[str, str], supervisor_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/internal/v1/violations", json=violation_body(place="x" * 10_000), headers=clerk_headers
    )
    assert r.status_code == 413
    rows = await audit_rows(client, supervisor_headers)
    assert any(
        row["path"] == "/internal/v1/violations" and row["status_code"] == 413 for row in rows
    )


async def test_a_read_whose_audit_row_cannot_be_written_fails_r_usr_2(
    app: FastAPI, client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    class BrokenAudit:
        async def append(self, **_kwargs: Any) -> None:
            raise OSError("audit database gone")

    fake.script("RecordViolation", lambda req: recorded(req, created=True))
    ctx = app.state.gateway
    real = ctx.audit
    ctx.audit = BrokenAudit()
    try:
        r = await client.post(
            "/internal/v1/violations",
            json=violation_body(source_record_id="no-audit"),
            headers=clerk_headers,
        )
    finally:
        ctx.audit = real
    assert r.status_code == 503
    assert error_body(r)["code"] == "AUDIT_UNAVAILABLE"
    assert "vio-1" not in r.text


async def test_audit_listing_pages_newest_first(
    client: httpx.AsyncClient, supervisor_headers: dict[str, str]
) -> None:
    for _ in range(3):
        await client.get("/internal/v1/nothing", headers=supervisor_headers)
    first = await client.get(
        "/internal/v1/audit", params={"limit": "2"}, headers=supervisor_headers
    )
    assert first.status_code == 200
    page = first.json()
    assert len(page["entries"]) == 2 and page["next_cursor"]
    ids = [e["audit_id"] for e in page["entries"]]
    assert ids == sorted(ids, reverse=True)
    second = await client.get(
        "/internal/v1/audit",
        params={"limit": "2", "cursor": page["next_cursor"]},
        headers=supervisor_headers,
    )
    assert all(e["audit_id"] < ids[-1] for e in second.json()["entries"])


async def test_expired_staff_token_is_401(client: httpx.AsyncClient) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    token = jwt.encode(
        {"sub": "super01", "role": "supervisor", "typ": "staff", "iss": ISSUER,
         "aud": STAFF_AUDIENCE, "iat": int(past.timestamp()),
         "exp": int(past.timestamp()) + 60, "jti": "j"},
        SECRET,
        algorithm="HS256",
    )  # fmt: skip
    r = await client.get("/internal/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert error_body(r)["details"]["reason"] == "expired"
