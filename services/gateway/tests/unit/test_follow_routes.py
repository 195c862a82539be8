"""The gateway's follow routes without I/O (issue 10): over a stub FollowService and a stub
QueryService (objects whose methods answer what the test says; no gRPC, no database).

What is the gateway's own and is proved here: bodies checked before any call (identifier
codes, the 6-digit code), the follow-service answers mapped to JSON, each follow error
code to its status (429 with ``Retry-After`` for the SMS limits, the quota named in
``details``), the read-your-writes wait after a follow starts or ends (the route answers
only once the follower's access changed in the read model, and still answers when it does
not in time), the sandbox SMS outbox (sandbox mode only, audited with the masked phone,
no code in any log), and /openapi.json naming every status of every follow operation.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cqcommon.errors import (
    ALREADY_FOLLOWING,
    FOLLOW_LICENCE_NOT_FOUND,
    FOLLOW_NO_CONSENT_ROUTE,
    FOLLOW_NOT_FOUND,
    FOLLOW_OWN_LICENCE,
    FOLLOW_OWN_VEHICLE,
    FOLLOW_QUOTA_EXCEEDED,
    FOLLOW_REQUEST_NOT_FOUND,
    FOLLOW_REQUEST_NOT_PENDING,
    FOLLOW_VEHICLE_NOT_FOUND,
    NOT_FOUND,
    SMS_CODE_EXPIRED,
    SMS_CODE_WRONG,
    SMS_PHONE_LOCKED,
    SMS_RESEND_TOO_SOON,
    SMS_UNAVAILABLE,
    DomainError,
)
from cqcommon.settings import Settings
from cqgateway.access_sync import AccessSync, QueryAccessProbe
from cqgateway.app import create_app
from cqgateway.openapi import X_ERROR_CODES
from cqgateway.routers.not_built import PLANNED
from cqgateway.staff import StaffAccount
from cqgateway.tokens import TokenCodec
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.query.v1 import query_pb2 as q
from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp

SECRET = "unit-secret-" + "f" * 40
LIU = "2088000000000004"
ZHAO = "2088000000000005"
CODE = "483920"


def ts(year: int, month: int, day: int, hour: int, minute: int) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=UTC))
    return out


def follow_request(**overrides: Any) -> fol.FollowRequest:
    values: dict[str, Any] = {
        "request_id": "req-1",
        "state": "pending_sms_code",
        "vehicle_id": "veh-1",
        "plate_number": "渝C***67",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "sms_phone_masked": "139****0005",
        "created_at": ts(2026, 3, 1, 2, 0),
        "expires_at": ts(2026, 3, 4, 2, 0),
        "sms_resend_at": ts(2026, 3, 1, 2, 1),
    }
    return fol.FollowRequest(**(values | overrides))


def vehicle_follow(**overrides: Any) -> fol.Follow:
    values: dict[str, Any] = {
        "follow_id": "f-1",
        "target": fol_events.FOLLOW_TARGET_VEHICLE,
        "vehicle_id": "veh-1",
        "plate_number": "渝C34567",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "started_at": ts(2026, 3, 1, 2, 3),
        "expires_at": ts(2027, 3, 1, 2, 3),
        "consent": "sms",
    }
    return fol.Follow(**(values | overrides))


def licence_follow(**overrides: Any) -> fol.Follow:
    values: dict[str, Any] = {
        "follow_id": "f-9",
        "target": fol_events.FOLLOW_TARGET_LICENCE,
        "licence_id": "lic-1",
        "licence_holder_name_masked": "张*",
        "started_at": ts(2026, 3, 1, 2, 3),
        "consent": "none",
    }
    return fol.Follow(**(values | overrides))


def end_answer(**overrides: Any) -> fol.EndFollowResponse:
    values: dict[str, Any] = {
        "follow_id": "f-1",
        "follower_user_id": LIU,
        "follower_person_id": "p-liu",
        "target": fol_events.FOLLOW_TARGET_VEHICLE,
        "vehicle_id": "veh-1",
    }
    return fol.EndFollowResponse(**(values | overrides))


# -- the app over stubs ----------------------------------------------------------------------------
Answer = Callable[[Any], Any]


class Stub:
    """A service whose methods answer ``answers[name](request)`` (a message, or raises)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        async def method(request: Any, *, timeout: float) -> Any:  # noqa: ASYNC109 - a stub's signature
            assert timeout > 0  # every call has a deadline
            self.requests.setdefault(name, []).append(request)
            return self.answers[name](request)

        return method

    def calls(self, name: str) -> list[Any]:
        return self.requests.get(name, [])


def sequence(*answers: Any) -> Answer:
    """Answers in turn (the last one repeats); an exception instance is raised."""
    queue = list(answers)

    def answer(_request: Any) -> Any:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return answer


def fail_with(error: DomainError) -> Answer:
    return sequence(error)


class FakeAudit:
    """``AuditRepository.append`` into a list."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def append(self, **row: Any) -> None:
        self.rows.append(row)


class FakeStaffAccounts:
    async def active_account(self, staff_id: str) -> StaffAccount | None:
        return StaffAccount(staff_id, "clerk")


@pytest.fixture
def follow() -> Stub:
    return Stub()


@pytest.fixture
def query() -> Stub:
    return Stub()


@pytest.fixture
def audit() -> FakeAudit:
    return FakeAudit()


def build_app(follow: Stub, query: Stub, audit: FakeAudit, *, sandbox: bool) -> FastAPI:
    app: FastAPI = create_app(Settings(token_secret=SECRET, sandbox_mode=sandbox))
    ctx = app.state.gateway
    # No lifespan: only the stubs are attached (require_backends finds them).
    ctx.backends = SimpleNamespace(follow=follow, query=query)
    ctx.access = AccessSync(QueryAccessProbe(query), timeout_s=0.3, interval_s=0.005)  # type: ignore[arg-type]
    ctx.audit = audit
    ctx.staff_accounts = FakeStaffAccounts()
    return app


async def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://gw.test")


@pytest.fixture
async def client(follow: Stub, query: Stub, audit: FakeAudit) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_of(build_app(follow, query, audit, sandbox=True)) as c:
        yield c


CODEC = TokenCodec(SECRET, user_ttl_s=600, staff_ttl_s=600)


def user_headers(user_id: str = LIU, person_id: str = "p-liu") -> dict[str, str]:
    return {"Authorization": f"Bearer {CODEC.issue_user(user_id, person_id).token}"}


@pytest.fixture
def user() -> dict[str, str]:
    return user_headers()


@pytest.fixture
def clerk() -> dict[str, str]:
    return {"Authorization": f"Bearer {CODEC.issue_staff('clerk01', 'clerk').token}"}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


VEHICLE_BODY = {"plate_type": "02", "plate_number": "渝c34567", "vin": "ab9876"}
LICENCE_BODY = {"name": "张伟", "licence_no": "500103199001011232", "file_no": "500100000001"}


# -- 1. asking to follow a vehicle ------------------------------------------------------------------
async def test_r_fol_1_a_follow_request_is_checked_mapped_and_answered_201(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str]
) -> None:
    follow.answers["RequestVehicleFollow"] = sequence(follow_request())
    r = await client.post("/api/v1/follows/vehicles", json=VEHICLE_BODY, headers=user)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "request_id": "req-1",
        "state": "pending_sms_code",
        "vehicle_id": "veh-1",
        "plate_type": "02",
        "plate_number": "渝C***67",
        "requester_name_masked": None,
        "sms_phone_masked": "139****0005",
        "created_at": "2026-03-01T10:00:00+08:00",
        "expires_at": "2026-03-04T10:00:00+08:00",
        "sms_resend_at": "2026-03-01T10:01:00+08:00",
        "follow_id": None,
    }
    (sent,) = follow.calls("RequestVehicleFollow")
    assert sent.caller == common.Caller(user_id=LIU, person_id="p-liu")
    assert (sent.plate_type, sent.plate_number, sent.vin) == (
        common.PLATE_TYPE_SMALL_CAR,
        "渝C34567",  # canonical form
        "AB9876",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (VEHICLE_BODY | {"plate_number": "渝C3456"}, 400, "INVALID_PLATE_NUMBER"),
        (VEHICLE_BODY | {"vin": "AB987"}, 400, "INVALID_VIN"),
        (VEHICLE_BODY | {"vin": "LFVA2A1J2MS69999"}, 400, "INVALID_VIN"),  # 16 characters
        (VEHICLE_BODY | {"plate_type": "99"}, 422, "VALIDATION_FAILED"),
        (VEHICLE_BODY | {"extra": 1}, 422, "VALIDATION_FAILED"),
        ({"plate_type": "02", "plate_number": "渝C34567"}, 422, "VALIDATION_FAILED"),
    ],
    ids=["plate", "vin-5", "vin-16", "plate-type", "unknown-field", "no-vin"],
)
async def test_a_bad_follow_body_is_refused_before_any_call(
    client: httpx.AsyncClient,
    follow: Stub,
    user: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    r = await client.post("/api/v1/follows/vehicles", json=body, headers=user)
    assert (r.status_code, error_of(r)["code"]) == (status, code)
    assert follow.requests == {}


async def test_a_full_vin_is_accepted_as_proof(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str]
) -> None:
    follow.answers["RequestVehicleFollow"] = sequence(follow_request())
    body = VEHICLE_BODY | {"vin": "lfva2a1j2ms699999"}
    r = await client.post("/api/v1/follows/vehicles", json=body, headers=user)
    assert r.status_code == 201, r.text
    assert follow.calls("RequestVehicleFollow")[0].vin == "LFVA2A1J2MS699999"


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (DomainError(FOLLOW_QUOTA_EXCEEDED, details={"quota": "vehicle_followers"}), 429, None),
        (DomainError(FOLLOW_QUOTA_EXCEEDED, details={"quota": "chances_this_year"}), 429, None),
        (DomainError(SMS_RESEND_TOO_SOON, details={"retry_after_s": 41.3}), 429, "42"),
        (DomainError(SMS_PHONE_LOCKED, details={"retry_after_s": 3600}), 429, "3600"),
        (DomainError(SMS_UNAVAILABLE), 503, None),
        (DomainError(FOLLOW_VEHICLE_NOT_FOUND), 404, None),
        (DomainError(FOLLOW_OWN_VEHICLE), 403, None),
        (DomainError(ALREADY_FOLLOWING), 409, None),
        (DomainError(FOLLOW_NO_CONSENT_ROUTE), 409, None),
    ],
    ids=lambda v: v.code if isinstance(v, DomainError) else str(v),
)
async def test_r_fol_3_r_fol_4_r_sms_1_2_refusals_keep_their_status_details_and_retry_after(
    client: httpx.AsyncClient,
    follow: Stub,
    user: dict[str, str],
    error: DomainError,
    status: int,
    retry_after: str | None,
) -> None:
    follow.answers["RequestVehicleFollow"] = fail_with(error)
    r = await client.post("/api/v1/follows/vehicles", json=VEHICLE_BODY, headers=user)
    assert r.status_code == status
    body = error_of(r)
    assert body["code"] == error.code and body["details"] == error.details
    assert r.headers.get("retry-after") == retry_after


# -- 2. the SMS code, and the read-your-writes wait ------------------------------------------------
async def test_r_fol_2_a_right_code_answers_the_follow_once_the_read_model_grants_it(
    client: httpx.AsyncClient, follow: Stub, query: Stub, user: dict[str, str]
) -> None:
    follow.answers["SubmitSmsCode"] = sequence(vehicle_follow())
    query.answers["GetRelations"] = sequence(
        q.GetRelationsResponse(),
        q.GetRelationsResponse(),
        q.GetRelationsResponse(relations={"veh-1": "followed"}),
    )
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": CODE}, headers=user
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "follow_id": "f-1",
        "target": "vehicle",
        "vehicle_id": "veh-1",
        "licence_id": None,
        "plate_type": "02",
        "plate_number": "渝C34567",
        "licence_holder_name_masked": None,
        "started_at": "2026-03-01T10:03:00+08:00",
        "expires_at": "2027-03-01T10:03:00+08:00",
        "consent": "sms",
    }
    (sent,) = follow.calls("SubmitSmsCode")
    assert (sent.request_id, sent.code, sent.caller.user_id) == ("req-1", CODE, LIU)
    probes = query.calls("GetRelations")
    assert len(probes) == 3  # answered only after the read model agreed
    assert all(p.caller.user_id == LIU and list(p.vehicle_ids) == ["veh-1"] for p in probes)


async def test_a_read_model_that_lags_past_the_bound_still_answers_success(
    client: httpx.AsyncClient,
    follow: Stub,
    query: Stub,
    user: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    follow.answers["SubmitSmsCode"] = sequence(vehicle_follow())
    query.answers["GetRelations"] = sequence(q.GetRelationsResponse())
    with caplog.at_level(logging.WARNING, logger="cqgateway.access_sync"):
        r = await client.post(
            "/api/v1/follow-requests/req-1/sms-code", json={"code": CODE}, headers=user
        )
    assert r.status_code == 201, r.text
    assert "follow f-1 started" in caplog.text
    assert CODE not in caplog.text


@pytest.mark.parametrize(
    "code", ["48392", "4839201", "48392a", "", 483920, "48 39 2", "①"], ids=repr
)
async def test_r_sms_1_a_code_that_is_not_6_digits_is_422_before_any_call(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str], code: Any
) -> None:
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": code}, headers=user
    )
    assert r.status_code == 422 and error_of(r)["code"] == "VALIDATION_FAILED"
    assert follow.requests == {}


@pytest.mark.parametrize("typed", ["４８３９２０", " 483 920 ", "48\u3000３920"], ids=repr)
async def test_r_sms_1_full_width_digits_and_spaces_are_read_as_the_digits(
    client: httpx.AsyncClient, follow: Stub, query: Stub, user: dict[str, str], typed: str
) -> None:
    follow.answers["SubmitSmsCode"] = sequence(vehicle_follow())
    query.answers["GetRelations"] = sequence(
        q.GetRelationsResponse(relations={"veh-1": "followed"})
    )
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": typed}, headers=user
    )
    assert r.status_code == 201, r.text
    assert follow.calls("SubmitSmsCode")[0].code == CODE


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DomainError(SMS_CODE_WRONG, details={"attempts_left": 4}), 400),
        (DomainError(SMS_CODE_EXPIRED), 409),
        (DomainError(FOLLOW_REQUEST_NOT_FOUND), 404),
        (DomainError(FOLLOW_REQUEST_NOT_PENDING), 409),
        (DomainError(FOLLOW_QUOTA_EXCEEDED, details={"quota": "active_vehicle_follows"}), 429),
    ],
    ids=lambda v: v.code if isinstance(v, DomainError) else str(v),
)
async def test_r_sms_1_code_refusals_keep_their_status_and_details(
    client: httpx.AsyncClient,
    follow: Stub,
    query: Stub,
    user: dict[str, str],
    error: DomainError,
    status: int,
) -> None:
    follow.answers["SubmitSmsCode"] = fail_with(error)
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": CODE}, headers=user
    )
    assert r.status_code == status
    assert error_of(r)["code"] == error.code and error_of(r)["details"] == error.details
    assert query.requests == {}  # nothing started: nothing to wait for


# -- 3. ending follows: unfollow, revocation, licences ------------------------------------------------
async def test_r_fol_7_unfollow_answers_204_once_the_follower_lost_access(
    client: httpx.AsyncClient, follow: Stub, query: Stub, user: dict[str, str]
) -> None:
    follow.answers["UnfollowVehicle"] = sequence(end_answer())
    query.answers["GetRelations"] = sequence(
        q.GetRelationsResponse(relations={"veh-1": "followed"}), q.GetRelationsResponse()
    )
    r = await client.delete("/api/v1/follows/vehicles/f-1", headers=user)
    assert r.status_code == 204 and r.content == b""
    assert follow.calls("UnfollowVehicle")[0].follow_id == "f-1"
    assert len(query.calls("GetRelations")) == 2


async def test_r_fol_7_revocation_waits_for_the_follower_not_the_owner(
    client: httpx.AsyncClient, follow: Stub, query: Stub
) -> None:
    follow.answers["RevokeFollower"] = sequence(end_answer())
    query.answers["GetRelations"] = sequence(
        q.GetRelationsResponse(relations={"veh-1": "followed"}), q.GetRelationsResponse()
    )
    owner = user_headers(ZHAO, "p-zhao")
    r = await client.delete("/api/v1/followers/f-1", headers=owner)
    assert r.status_code == 204
    assert follow.calls("RevokeFollower")[0].caller.user_id == ZHAO
    probes = query.calls("GetRelations")
    assert {p.caller.user_id for p in probes} == {LIU}
    assert probes[0].caller.person_id == "p-liu"


async def test_r_fol_8_a_licence_follow_answers_once_its_violations_are_visible(
    client: httpx.AsyncClient, follow: Stub, query: Stub, user: dict[str, str]
) -> None:
    follow.answers["FollowLicence"] = sequence(licence_follow())
    query.answers["ListViolations"] = sequence(DomainError(NOT_FOUND), q.ListViolationsResponse())
    r = await client.post("/api/v1/follows/licences", json=LICENCE_BODY, headers=user)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["target"], body["licence_id"], body["consent"]) == ("licence", "lic-1", "none")
    assert body["licence_holder_name_masked"] == "张*" and body["expires_at"] is None
    (sent,) = follow.calls("FollowLicence")
    assert (sent.name, sent.licence_no, sent.file_no) == (
        "张伟",
        "500103199001011232",
        "500100000001",
    )
    probes = query.calls("ListViolations")
    assert len(probes) == 2 and probes[0].licence_id == "lic-1"
    assert probes[0].page.page_size == 1 and probes[0].caller.user_id == LIU


async def test_r_fol_8_a_licence_unfollow_answers_once_the_list_is_404(
    client: httpx.AsyncClient, follow: Stub, query: Stub, user: dict[str, str]
) -> None:
    follow.answers["UnfollowLicence"] = sequence(
        end_answer(
            follow_id="f-9",
            target=fol_events.FOLLOW_TARGET_LICENCE,
            vehicle_id="",
            licence_id="lic-1",
        )
    )
    query.answers["ListViolations"] = sequence(q.ListViolationsResponse(), DomainError(NOT_FOUND))
    r = await client.delete("/api/v1/follows/licences/f-9", headers=user)
    assert r.status_code == 204
    assert len(query.calls("ListViolations")) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (LICENCE_BODY | {"licence_no": "500103199001011230"}, "INVALID_ID_NUMBER"),
        (LICENCE_BODY | {"file_no": "50010000000"}, "INVALID_FILE_NO"),
    ],
    ids=["licence-no", "file-no"],
)
async def test_a_bad_licence_body_is_400_before_any_call(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str], body: dict[str, Any], code: str
) -> None:
    r = await client.post("/api/v1/follows/licences", json=body, headers=user)
    assert (r.status_code, error_of(r)["code"]) == (400, code)
    assert follow.requests == {}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DomainError(FOLLOW_LICENCE_NOT_FOUND), 404),
        (DomainError(FOLLOW_OWN_LICENCE), 403),
        (DomainError(FOLLOW_QUOTA_EXCEEDED, details={"quota": "licence_follows"}), 429),
        (DomainError(ALREADY_FOLLOWING), 409),
    ],
    ids=lambda v: v.code if isinstance(v, DomainError) else str(v),
)
async def test_licence_follow_refusals(
    client: httpx.AsyncClient,
    follow: Stub,
    user: dict[str, str],
    error: DomainError,
    status: int,
) -> None:
    follow.answers["FollowLicence"] = fail_with(error)
    r = await client.post("/api/v1/follows/licences", json=LICENCE_BODY, headers=user)
    assert (r.status_code, error_of(r)["code"]) == (status, error.code)


@pytest.mark.parametrize(
    ("method", "path", "rpc"),
    [
        ("DELETE", "/api/v1/follows/vehicles/f-1", "UnfollowVehicle"),
        ("DELETE", "/api/v1/followers/f-1", "RevokeFollower"),
        ("DELETE", "/api/v1/follows/licences/f-1", "UnfollowLicence"),
    ],
)
async def test_another_users_follow_is_404_and_nothing_is_awaited(
    client: httpx.AsyncClient,
    follow: Stub,
    query: Stub,
    user: dict[str, str],
    method: str,
    path: str,
    rpc: str,
) -> None:
    follow.answers[rpc] = fail_with(DomainError(FOLLOW_NOT_FOUND))
    r = await client.request(method, path, headers=user)
    assert (r.status_code, error_of(r)["code"]) == (404, "FOLLOW_NOT_FOUND")
    assert query.requests == {}


# -- 4. owners, lists ---------------------------------------------------------------------------------
async def test_r_fol_2_an_owner_sees_approves_and_declines_requests(
    client: httpx.AsyncClient, follow: Stub
) -> None:
    owner = user_headers(ZHAO, "p-zhao")
    waiting = follow_request(
        state="pending_owner_approval",
        plate_number="渝A67890",
        requester_name_masked="刘*",
        sms_phone_masked="",
    )
    follow.answers["ListIncomingRequests"] = sequence(
        fol.ListIncomingRequestsResponse(requests=[waiting])
    )
    r = await client.get("/api/v1/follow-requests/incoming", headers=owner)
    assert r.status_code == 200
    (item,) = r.json()["requests"]
    assert (item["state"], item["plate_number"], item["requester_name_masked"]) == (
        "pending_owner_approval",
        "渝A67890",
        "刘*",
    )
    follow.answers["ApproveRequest"] = sequence(
        follow_request(state="approved", follow_id="f-7", requester_name_masked="刘*")
    )
    r = await client.post("/api/v1/follow-requests/req-1/approve", headers=owner)
    assert r.status_code == 200 and r.json()["follow_id"] == "f-7"
    assert follow.calls("ApproveRequest")[0].caller.user_id == ZHAO
    follow.answers["DeclineRequest"] = sequence(follow_request(state="declined"))
    r = await client.post("/api/v1/follow-requests/req-2/decline", headers=owner)
    assert r.status_code == 200 and r.json()["state"] == "declined"
    assert follow.calls("DeclineRequest")[0].request_id == "req-2"


@pytest.mark.parametrize("action", ["approve", "decline"])
async def test_another_owners_request_is_404(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str], action: str
) -> None:
    rpc = "ApproveRequest" if action == "approve" else "DeclineRequest"
    follow.answers[rpc] = fail_with(DomainError(FOLLOW_REQUEST_NOT_FOUND))
    r = await client.post(f"/api/v1/follow-requests/req-1/{action}", headers=user)
    assert (r.status_code, error_of(r)["code"]) == (404, "FOLLOW_REQUEST_NOT_FOUND")


async def test_r_fol_3_the_follow_list_shows_quota_use_and_pending_requests(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str]
) -> None:
    follow.answers["ListFollows"] = sequence(
        fol.ListFollowsResponse(
            follows=[vehicle_follow(), licence_follow()],
            active=1,
            max_active=2,
            chances_left_this_year=2,
            chances_per_year=3,
            licence_follows=1,
            max_licence_follows=5,
            pending_requests=[follow_request()],
        )
    )
    r = await client.get("/api/v1/follows", headers=user)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert {k: body[k] for k in body if k not in ("follows", "pending_requests")} == {
        "active": 1,
        "max_active": 2,
        "chances_left_this_year": 2,
        "chances_per_year": 3,
        "licence_follows": 1,
        "max_licence_follows": 5,
    }
    assert [f["target"] for f in body["follows"]] == ["vehicle", "licence"]
    assert body["pending_requests"][0]["request_id"] == "req-1"


async def test_r_x_3_an_owner_sees_who_follows_since_when_masked(
    client: httpx.AsyncClient, follow: Stub
) -> None:
    follow.answers["ListFollowers"] = sequence(
        fol.ListFollowersResponse(
            followers=[
                fol.Follower(
                    follower_id="f-1",
                    vehicle_id="veh-1",
                    plate_number="渝A67890",
                    follower_name_masked="刘*",
                    since=ts(2026, 3, 1, 2, 3),
                    consent="owner_app",
                )
            ]
        )
    )
    r = await client.get("/api/v1/followers", headers=user_headers(ZHAO, "p-zhao"))
    assert r.status_code == 200
    assert r.json() == {
        "followers": [
            {
                "follower_id": "f-1",
                "vehicle_id": "veh-1",
                "plate_number": "渝A67890",
                "follower_name_masked": "刘*",
                "since": "2026-03-01T10:03:00+08:00",
                "expires_at": None,
                "consent": "owner_app",
            }
        ]
    }


@pytest.mark.parametrize(
    ("rpc", "answer", "method", "path"),
    [
        ("ListFollows", fol.ListFollowsResponse(follows=[vehicle_follow(consent="fax")]),
         "GET", "/api/v1/follows"),
        ("ListFollows", fol.ListFollowsResponse(follows=[vehicle_follow(target=0)]),
         "GET", "/api/v1/follows"),
        ("ListIncomingRequests",
         fol.ListIncomingRequestsResponse(requests=[follow_request(state="maybe")]),
         "GET", "/api/v1/follow-requests/incoming"),
    ],
    ids=["consent", "target", "state"],
)  # fmt: skip
async def test_an_answer_outside_the_contract_is_an_internal_error(
    client: httpx.AsyncClient,
    follow: Stub,
    user: dict[str, str],
    rpc: str,
    answer: Any,
    method: str,
    path: str,
) -> None:
    follow.answers[rpc] = sequence(answer)
    r = await client.request(method, path, headers=user)
    assert (r.status_code, error_of(r)["code"]) == (500, "INTERNAL_ERROR")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/follows/vehicles"),
        ("POST", "/api/v1/follow-requests/req-1/sms-code"),
        ("GET", "/api/v1/follow-requests/incoming"),
        ("POST", "/api/v1/follow-requests/req-1/approve"),
        ("POST", "/api/v1/follow-requests/req-1/decline"),
        ("GET", "/api/v1/follows"),
        ("DELETE", "/api/v1/follows/vehicles/f-1"),
        ("GET", "/api/v1/followers"),
        ("DELETE", "/api/v1/followers/f-1"),
        ("POST", "/api/v1/follows/licences"),
        ("DELETE", "/api/v1/follows/licences/f-1"),
    ],
)
async def test_every_follow_endpoint_needs_a_user_token(
    client: httpx.AsyncClient, follow: Stub, clerk: dict[str, str], method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    staff = await client.request(method, path, headers=clerk)
    assert (staff.status_code, error_of(staff)["code"]) == (401, "TOKEN_INVALID")
    assert follow.requests == {}


# -- 5. the sandbox SMS outbox ----------------------------------------------------------------------
def outbox() -> fol.ListSandboxSmsResponse:
    return fol.ListSandboxSmsResponse(
        messages=[
            fol.SandboxSms(
                phone="13900000005",
                template_code="SMS_000000000",
                params={"code": CODE},
                sent_at=ts(2026, 3, 1, 2, 0),
            )
        ]
    )


async def test_r_sms_3_staff_read_the_sandbox_outbox_audited_with_the_masked_phone(
    client: httpx.AsyncClient,
    follow: Stub,
    audit: FakeAudit,
    clerk: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    follow.answers["ListSandboxSms"] = sequence(outbox())
    with caplog.at_level(logging.DEBUG):
        r = await client.get(
            "/internal/v1/sandbox/sms", params={"phone": "13900000005"}, headers=clerk
        )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "messages": [
            {
                "phone": "13900000005",
                "template_code": "SMS_000000000",
                "params": {"code": CODE},
                "sent_at": "2026-03-01T10:00:00+08:00",
            }
        ]
    }
    (sent,) = follow.calls("ListSandboxSms")
    assert (sent.phone, sent.limit, sent.caller.staff_id) == ("13900000005", 20, "clerk01")
    (row,) = audit.rows
    assert row["subjects"] == ["phone:139****0005"] and row["status_code"] == 200
    assert CODE not in str(row) and CODE not in caplog.text


async def test_r_sms_3_outside_sandbox_mode_the_outbox_does_not_exist(
    follow: Stub, query: Stub, audit: FakeAudit, clerk: dict[str, str]
) -> None:
    follow.answers["ListSandboxSms"] = sequence(outbox())
    async with await client_of(build_app(follow, query, audit, sandbox=False)) as c:
        r = await c.get("/internal/v1/sandbox/sms", headers=clerk)
    assert (r.status_code, error_of(r)["code"]) == (404, "SANDBOX_ONLY")
    assert follow.requests == {} and audit.rows[0]["status_code"] == 404


async def test_the_outbox_is_for_staff_and_checks_the_phone(
    client: httpx.AsyncClient, follow: Stub, user: dict[str, str], clerk: dict[str, str]
) -> None:
    r = await client.get("/internal/v1/sandbox/sms", headers=user)
    assert r.status_code == 401
    r = await client.get("/internal/v1/sandbox/sms", params={"phone": "139-0000"}, headers=clerk)
    assert (r.status_code, error_of(r)["code"]) == (422, "VALIDATION_FAILED")
    assert follow.requests == {}


# -- 6. the contract ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings(token_secret=SECRET)).openapi()


@pytest.mark.parametrize(
    ("method", "path", "statuses", "codes"),
    [
        ("post", "/api/v1/follows/vehicles", {"201", "400", "403", "404", "409", "429", "503"},
         {"FOLLOW_QUOTA_EXCEEDED", "SMS_RESEND_TOO_SOON", "SMS_PHONE_LOCKED", "SMS_UNAVAILABLE",
          "FOLLOW_OWN_VEHICLE", "FOLLOW_NO_CONSENT_ROUTE", "INVALID_VIN"}),
        ("post", "/api/v1/follow-requests/{request_id}/sms-code",
         {"201", "400", "404", "409", "422", "429"},
         {"SMS_CODE_WRONG", "SMS_CODE_EXPIRED", "FOLLOW_REQUEST_NOT_FOUND"}),
        ("post", "/api/v1/follow-requests/{request_id}/approve", {"200", "404", "409", "429"},
         {"FOLLOW_REQUEST_NOT_PENDING"}),
        ("post", "/api/v1/follow-requests/{request_id}/decline", {"200", "404", "409"},
         {"FOLLOW_REQUEST_NOT_FOUND"}),
        ("get", "/api/v1/follow-requests/incoming", {"200", "401"}, set()),
        ("get", "/api/v1/follows", {"200", "401"}, set()),
        ("get", "/api/v1/followers", {"200", "401"}, set()),
        ("delete", "/api/v1/follows/vehicles/{follow_id}", {"204", "404"}, {"FOLLOW_NOT_FOUND"}),
        ("delete", "/api/v1/followers/{follower_id}", {"204", "404"}, {"FOLLOW_NOT_FOUND"}),
        ("post", "/api/v1/follows/licences", {"201", "400", "403", "404", "409", "429"},
         {"FOLLOW_LICENCE_NOT_FOUND", "INVALID_ID_NUMBER", "INVALID_FILE_NO"}),
        ("delete", "/api/v1/follows/licences/{follow_id}", {"204", "404"}, {"FOLLOW_NOT_FOUND"}),
        ("get", "/internal/v1/sandbox/sms", {"200", "401", "404", "422"}, {"SANDBOX_ONLY"}),
    ],
)  # fmt: skip
def test_every_follow_operation_documents_its_statuses_and_codes(
    openapi: dict[str, Any], method: str, path: str, statuses: set[str], codes: set[str]
) -> None:
    operation = openapi["paths"][path][method]
    assert statuses <= set(operation["responses"]), sorted(operation["responses"])
    assert codes <= set(operation[X_ERROR_CODES])
    assert "NOT_IMPLEMENTED" not in operation[X_ERROR_CODES]
    if "429" in statuses:
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_no_follow_endpoint_is_planned_any_more_and_the_additions_say_so(
    openapi: dict[str, Any],
) -> None:
    assert not [p for p in PLANNED if "follow" in p.path]
    for path in ("/api/v1/followers", "/internal/v1/sandbox/sms"):
        assert "addition to API.md" in openapi["paths"][path]["get"]["description"]
    code = openapi["components"]["schemas"]["SmsCodeBody"]["properties"]["code"]
    assert code["pattern"] == "^[0-9]{6}$"
