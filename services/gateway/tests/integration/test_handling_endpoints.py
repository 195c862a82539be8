"""The handling endpoints of the gateway (online handling, the counter's in-person handling,
disputes, the R-X-2 alert list) against real PostgreSQL with ``FakeServices`` (conftest)
scripted as the AdjudicationService: these tests prove the HTTP ↔ gRPC mapping, the checks
made before any call, the pass-through of the service's refusals (every reason, the route)
and the audit of counter calls. The rules themselves are adjudication's tests; the flows
through the real services are tests/integration/test_handling_personas.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cqcommon.errors import (
    CATALOGUE,
    HANDLING_NOT_FOUND,
    NOT_FOUND,
    DomainError,
    ErrorKind,
    ErrorSpec,
)
from cqdev.testing import error_body, traced
from cqgateway.handling_codes import ELIGIBILITY_REASONS
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as q
from google.protobuf.timestamp_pb2 import Timestamp

pytestmark = pytest.mark.integration

#: The conftest's ``user_headers`` (a sandbox login as a person) and ``audit_row`` fixtures.
UserHeaders = Callable[..., Awaitable[dict[str, str]]]
AuditRow = Callable[[str], Awaitable[dict[str, Any]]]

LICENCE_NO = "500103199001011232"


# -- helpers -----------------------------------------------------------------------------------
def ts(year: int, month: int, day: int, hour: int, minute: int) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=UTC))
    return out


def _template(path: str) -> str:
    """The OpenAPI path of a concrete handling URL."""
    return (
        path.replace("h-other", "{handling_id}")
        .replace("/owner/", "/{step}/")
        .replace("/handler/", "/{step}/")
    )


def fail_with(error: DomainError) -> Any:
    def answer(_req: Any) -> Any:
        raise error

    return answer


def handling(**overrides: Any) -> adj.Handling:
    """R-ADJ-4: 刘洋's handling of a point-bearing violation on 张伟's car, owner step passed."""
    values: dict[str, Any] = {
        "handling_id": "h-1",
        "violation_id": "vio-1",
        "handler_person_id": "p-1",
        "state": "awaiting_verification",
        "route": "owner_then_handler",
        "steps": [
            adj.VerificationStep(
                step="owner",
                certify_id="cert-owner",
                url="https://face.example/cert-owner",
                status="passed",
                person_name="张*",
                expires_at=ts(2026, 3, 1, 2, 10),
            ),
            adj.VerificationStep(
                step="handler",
                certify_id="cert-handler",
                url="https://face.example/cert-handler",
                status="pending",
                person_name="刘洋",
            ),
        ],
        "handler_licence_id": "lic-1",
        "created_at": ts(2026, 3, 1, 2, 0),
    }
    return adj.Handling(**(values | overrides))


def decision() -> adj.Decision:
    return adj.Decision(
        decision_no="5000000000000042",
        violation_id="vio-1",
        decision_date=common.Date(year=2026, month=3, day=1),
        due_date=common.Date(year=2026, month=3, day=16),
        fine_fen=10_000,
        points=3,
    )


def violation(**overrides: Any) -> adj.Violation:
    values: dict[str, Any] = {
        "violation_id": "vio-1",
        "source_system": "camera-net",
        "source_record_id": "cam-1",
        "vehicle_id": "veh-1",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "plate_number": "渝A12345",
        "licence_id": "lic-9",
        "violation_code": "1636",
        "description_zh": "超速50%以上",
        "occurred_at": ts(2026, 2, 10, 6, 5),
        "place": "G50沪渝高速",
        "fine_fen": 50_000,
        "points": 6,
        "source": common.VIOLATION_SOURCE_NON_SITE,
        "procedure": common.PROCEDURE_GENERAL,
        "status": common.VIOLATION_STATUS_UNHANDLED,
        "disputed": True,
    }
    return adj.Violation(**(values | overrides))


# -- POST /api/v1/violations/{id}/handlings ---------------------------------------------------
async def test_start_answers_201_with_the_steps_in_order_r_adj_4(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-ADJ-4: the owner step comes first; each step carries its certify id, url, whose face
    (masked for the owner, R-Q-4) and, once passed, when it expires (Asia/Shanghai)."""
    headers = await user_headers(person_id="p-1")
    fake.script("StartHandling", lambda req: handling())
    r = await client.post("/api/v1/violations/vio-1/handlings", headers=headers)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "handling_id": "h-1",
        "violation_id": "vio-1",
        "state": "awaiting_verification",
        "route": "owner_then_handler",
        "steps": [
            {
                "step": "owner",
                "certify_id": "cert-owner",
                "url": "https://face.example/cert-owner",
                "status": "passed",
                "person_name": "张*",
                "expires_at": "2026-03-01T10:10:00+08:00",
            },
            {
                "step": "handler",
                "certify_id": "cert-handler",
                "url": "https://face.example/cert-handler",
                "status": "pending",
                "person_name": "刘洋",
                "expires_at": None,
            },
        ],
        "handler_licence_id": "lic-1",
        "decision": None,
        "created_at": "2026-03-01T10:00:00+08:00",
    }
    (sent,) = fake.requests["StartHandling"]
    assert (sent.violation_id, sent.caller.user_id, sent.caller.person_id) == (
        "vio-1",
        "2088000000000001",
        "p-1",
    )


def _refusal(spec: ErrorSpec, route: str) -> DomainError:
    """A refused start as adjudication sends it: the first reason's spec, every reason."""
    second = next(s for s in ELIGIBILITY_REASONS if s.code != spec.code)
    reasons = [
        {"code": s.code, "message_zh": s.message_zh, "message_en": s.message_en}
        for s in (spec, second)
    ]
    return DomainError(spec, details={"reasons": reasons, "route": route})


@pytest.mark.parametrize("spec", ELIGIBILITY_REASONS, ids=lambda s: s.code)
async def test_a_refused_start_answers_every_reason_and_the_route(
    client: httpx.AsyncClient, fake: Any, spec: ErrorSpec, user_headers: UserHeaders
) -> None:
    """R-ADJ-1..4, 6, 9, R-X-2: each refusal reason answers its own code — 403 for a rule,
    409 for a state conflict — with every failing rule in ``details.reasons`` and the route
    to take instead; each code is documented on the route."""
    headers = await user_headers()
    refusal = _refusal(spec, "counter")
    fake.script("StartHandling", fail_with(refusal))
    r = await client.post("/api/v1/violations/vio-1/handlings", headers=headers)
    assert r.status_code == (409 if spec.kind is ErrorKind.CONFLICT else 403), r.text
    body = error_body(r)
    assert (body["code"], body["message_en"]) == (spec.code, spec.message_en)
    assert body["details"] == {"reasons": refusal.details["reasons"], "route": "counter"}
    documented = (await client.get("/openapi.json")).json()["paths"][
        "/api/v1/violations/{violation_id}/handlings"
    ]["post"]["x-error-codes"]
    assert spec.code in documented


def test_every_eligibility_reason_is_a_refusal_in_the_one_table() -> None:
    """Each reason the routes document is a catalogued 403 rule or 409 state conflict."""
    assert ELIGIBILITY_REASONS, "the eligibility reasons are listed"
    for spec in ELIGIBILITY_REASONS:
        assert CATALOGUE[spec.code] is spec
        assert spec.kind in (ErrorKind.FORBIDDEN, ErrorKind.CONFLICT), spec.code


async def test_start_of_an_unknown_or_foreign_violation_answers_404(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script("StartHandling", fail_with(DomainError(NOT_FOUND)))
    r = await client.post("/api/v1/violations/vio-404/handlings", headers=headers)
    assert r.status_code == 404
    assert error_body(r)["code"] == "NOT_FOUND"


async def test_start_refuses_a_malformed_id_before_calling(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    r = await client.post("/api/v1/violations/not%20an%20id/handlings", headers=headers)
    assert r.status_code == 422
    assert "StartHandling" not in fake.requests


# -- complete / submit / get ------------------------------------------------------------------------
async def test_complete_passes_the_step_and_maps_the_new_status(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    passed = handling(state="verified")
    passed.steps[1].status = "passed"
    passed.steps[1].expires_at.CopyFrom(ts(2026, 3, 1, 2, 12))
    fake.script("CompleteVerification", lambda req: passed)
    r = await client.post("/api/v1/handlings/h-1/verifications/handler/complete", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "verified"
    assert r.json()["steps"][1]["status"] == "passed"
    assert r.json()["steps"][1]["expires_at"] == "2026-03-01T10:12:00+08:00"
    (sent,) = fake.requests["CompleteVerification"]
    assert (sent.handling_id, sent.step, sent.caller.person_id) == ("h-1", "handler", "p-1")


async def test_complete_of_an_unknown_step_answers_422_without_calling(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    r = await client.post("/api/v1/handlings/h-1/verifications/driver/complete", headers=headers)
    assert r.status_code == 422
    assert error_body(r)["code"] == "VALIDATION_FAILED"
    assert "CompleteVerification" not in fake.requests


async def test_submit_answers_the_decision_r_adj_7(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-ADJ-7: the decision number, dates, fine and points of the issued decision."""
    headers = await user_headers()
    fake.script("SubmitHandling", lambda req: handling(state="submitted", decision=decision()))
    r = await client.post("/api/v1/handlings/h-1/submit", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "decision_no": "5000000000000042",
        "violation_id": "vio-1",
        "decision_date": "2026-03-01",
        "due_date": "2026-03-16",
        "fine_fen": 10_000,
        "points": 3,
    }
    (sent,) = fake.requests["SubmitHandling"]
    assert (sent.handling_id, sent.caller.person_id) == ("h-1", "p-1")


async def test_a_submit_answered_without_a_decision_is_an_internal_error(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """A contract break between the services is a 500, never an empty decision."""
    headers = await user_headers()
    fake.script("SubmitHandling", lambda req: handling(state="submitted"))
    r = await client.post("/api/v1/handlings/h-1/submit", headers=headers)
    assert r.status_code == 500
    assert error_body(r)["code"] == "INTERNAL_ERROR"


async def test_an_undocumented_state_from_the_service_is_an_internal_error(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script("GetHandling", lambda req: handling(state="half_done"))
    r = await client.get("/api/v1/handlings/h-1", headers=headers)
    assert r.status_code == 500


async def test_get_maps_a_submitted_handling_with_its_decision(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script("GetHandling", lambda req: handling(state="submitted", decision=decision()))
    r = await client.get("/api/v1/handlings/h-1", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "submitted"
    assert r.json()["decision"]["decision_no"] == "5000000000000042"


@pytest.mark.parametrize(
    ("method", "path", "rpc"),
    [
        ("POST", "/api/v1/handlings/h-other/verifications/owner/complete", "CompleteVerification"),
        ("POST", "/api/v1/handlings/h-other/submit", "SubmitHandling"),
        ("GET", "/api/v1/handlings/h-other", "GetHandling"),
    ],
)
async def test_another_users_handling_answers_404_like_an_unknown_one(
    client: httpx.AsyncClient,
    fake: Any,
    method: str,
    path: str,
    rpc: str,
    user_headers: UserHeaders,
) -> None:
    """The service answers NOT_FOUND for a handling that is not the caller's; the gateway
    passes it on unchanged (same status, code and body as an unknown id)."""
    headers = await user_headers()
    fake.script(rpc, fail_with(DomainError(HANDLING_NOT_FOUND)))
    r = await client.request(method, path, headers=headers)
    assert r.status_code == 404
    assert error_body(r) == {
        "code": "HANDLING_NOT_FOUND",
        "message_zh": HANDLING_NOT_FOUND.message_zh,
        "message_en": HANDLING_NOT_FOUND.message_en,
        "details": {},
    }
    documented = (await client.get("/openapi.json")).json()["paths"]
    assert "HANDLING_NOT_FOUND" in next(iter(documented[_template(path)].values()))["x-error-codes"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/violations/vio-1/handlings"),
        ("POST", "/api/v1/handlings/h-1/verifications/handler/complete"),
        ("POST", "/api/v1/handlings/h-1/submit"),
        ("GET", "/api/v1/handlings/h-1"),
    ],
)
async def test_handling_endpoints_need_a_user_token(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    # a staff token is not a mini-program token
    assert (await client.request(method, path, headers=clerk_headers)).status_code == 401
    assert not fake.requests


# -- GET /api/v1/violations/{id}: every reason ----------------------------------------------------
async def test_the_violation_detail_lists_every_refusal_reason_r_q_3(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-3: the hint keeps its first reason and adds every failing rule."""
    headers = await user_headers()
    hint = common.OnlineHandling(
        availability=common.OnlineHandling.AVAILABILITY_REFUSED,
        route="counter",
        reason_code="R1",
        reason_zh="理由一",
        reason_en="reason one",
        reasons=[
            common.Reason(code="R1", zh="理由一", en="reason one"),
            common.Reason(code="R2", zh="理由二", en="reason two"),
        ],
    )
    fake.script(
        "GetViolation",
        lambda req: q.ViolationView(
            violation_id="vio-1", plate_number="渝A12345", online_handling=hint
        ),
    )
    r = await client.get("/api/v1/violations/vio-1", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["online_handling"] == {
        "allowed": False,
        "availability": "refused",
        "route": "counter",
        "reason_code": "R1",
        "reason": "理由一",
        "reason_en": "reason one",
        "reasons": [
            {"code": "R1", "message_zh": "理由一", "message_en": "reason one"},
            {"code": "R2", "message_zh": "理由二", "message_en": "reason two"},
        ],
    }


# -- POST /internal/v1/violations/{id}/handle ------------------------------------------------------
async def test_counter_handle_answers_the_decision_and_is_audited(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    """A counter handles an over-200-yuan non-site violation in person: the licence number
    reaches adjudication in canonical form; the audit row names the violation, the licence
    number and the licence the points went on."""
    fake.script(
        "HandleAtCounter",
        lambda req: handling(
            route="counter",
            state="submitted",
            steps=[adj.VerificationStep(step="handler", certify_id="desk-1", status="used")],
            handler_licence_id="lic-desk",
            decision=decision(),
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.post(
        "/internal/v1/violations/vio-1/handle",
        json={"licence_no": LICENCE_NO.lower()},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["route"], r.json()["state"]) == ("counter", "submitted")
    assert r.json()["decision"]["decision_no"] == "5000000000000042"
    (sent,) = fake.requests["HandleAtCounter"]
    assert (sent.violation_id, sent.handler_licence_no, sent.caller.staff_id) == (
        "vio-1",
        LICENCE_NO,
        "clerk01",
    )
    row = await audit_row(trace_id)
    assert row["subjects"] == ["violation:vio-1", f"licence_no:{LICENCE_NO}", "licence:lic-desk"]
    assert row["status_code"] == 201


async def test_counter_handle_refuses_a_malformed_licence_no_before_calling(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/internal/v1/violations/vio-1/handle",
        json={"licence_no": "500103199001011231"},  # wrong check digit
        headers=clerk_headers,
    )
    assert r.status_code == 400
    assert error_body(r)["code"] == "INVALID_ID_NUMBER"
    assert "HandleAtCounter" not in fake.requests


async def test_counter_handle_needs_a_staff_token(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    user = await user_headers()
    for headers in ({}, user):
        r = await client.post(
            "/internal/v1/violations/vio-1/handle", json={"licence_no": LICENCE_NO}, headers=headers
        )
        assert r.status_code == 401
    assert "HandleAtCounter" not in fake.requests


# -- dispute / undispute ----------------------------------------------------------------------------
async def test_dispute_sends_the_reason_and_is_audited_r_adj_9(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    """R-ADJ-9: the clerk's note (line breaks allowed) reaches adjudication; the answer is
    the disputed violation; the audit names the violation, its vehicle and licence."""
    fake.script("DisputeViolation", lambda req: violation(disputed=True))
    headers, trace_id = traced(clerk_headers)
    r = await client.post(
        "/internal/v1/violations/vio-1/dispute",
        json={"reason": "车主称当日车辆不在重庆\n有停车记录"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["disputed"] is True
    (sent,) = fake.requests["DisputeViolation"]
    assert (sent.violation_id, sent.reason) == ("vio-1", "车主称当日车辆不在重庆\n有停车记录")
    row = await audit_row(trace_id)
    assert row["subjects"] == ["violation:vio-1", "vehicle:veh-1", "licence:lic-9"]


async def test_dispute_refuses_control_characters_in_the_reason(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/internal/v1/violations/vio-1/dispute",
        json={"reason": "a\u202eb"},
        headers=clerk_headers,
    )
    assert r.status_code == 400
    assert error_body(r)["code"] == "INVALID_CHARACTERS"
    assert "DisputeViolation" not in fake.requests


async def test_undispute_answers_the_cleared_violation(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script("UndisputeViolation", lambda req: violation(disputed=False))
    headers, trace_id = traced(clerk_headers)
    r = await client.post("/internal/v1/violations/vio-1/undispute", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["disputed"] is False
    (sent,) = fake.requests["UndisputeViolation"]
    assert (sent.violation_id, sent.caller.staff_id) == ("vio-1", "clerk01")
    row = await audit_row(trace_id)
    assert row["subjects"] == ["violation:vio-1", "vehicle:veh-1", "licence:lic-9"]


async def test_dispute_of_an_unknown_violation_answers_404(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    fake.script("DisputeViolation", fail_with(DomainError(NOT_FOUND)))
    r = await client.post(
        "/internal/v1/violations/vio-404/dispute", json={"reason": "异议"}, headers=clerk_headers
    )
    assert r.status_code == 404


# -- GET /internal/v1/alerts/points-buying ----------------------------------------------------------
async def test_points_buying_alerts_are_paged_and_audited_r_x_2(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    """R-X-2: staff see the alerts; the page request reaches adjudication; the audit names
    each alert's licence, vehicle, handler and violation."""
    alert = adj.PointsBuyingAlert(
        alert_id="a-1",
        kind="licence_for_many_vehicles",
        licence_id="lic-1",
        vehicle_id="veh-4",
        cycle_start=common.Date(year=2025, month=9, day=1),
        count=3,
        violation_id="vio-4",
        handler_person_id="p-1",
        raised_at=ts(2026, 3, 1, 2, 0),
    )
    fake.script(
        "ListPointsBuyingAlerts",
        lambda req: adj.ListPointsBuyingAlertsResponse(alerts=[alert], next_cursor="c-2"),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get(
        "/internal/v1/alerts/points-buying", params={"limit": "1", "cursor": "c-1"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "alerts": [
            {
                "alert_id": "a-1",
                "kind": "licence_for_many_vehicles",
                "licence_id": "lic-1",
                "vehicle_id": "veh-4",
                "cycle_start": "2025-09-01",
                "count": 3,
                "violation_id": "vio-4",
                "handler_person_id": "p-1",
                "raised_at": "2026-03-01T10:00:00+08:00",
            }
        ],
        "next_cursor": "c-2",
    }
    (sent,) = fake.requests["ListPointsBuyingAlerts"]
    assert (sent.page.page_size, sent.page.cursor) == (1, "c-1")
    row = await audit_row(trace_id)
    assert row["subjects"] == ["licence:lic-1", "vehicle:veh-4", "person:p-1", "violation:vio-4"]


async def test_points_buying_alerts_refuse_a_page_size_over_100(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    r = await client.get(
        "/internal/v1/alerts/points-buying", params={"limit": "101"}, headers=clerk_headers
    )
    assert r.status_code == 422
    assert "ListPointsBuyingAlerts" not in fake.requests
