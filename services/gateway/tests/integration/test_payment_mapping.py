"""The payment endpoints of the gateway against real PostgreSQL (staff accounts, audit log)
with ``FakeServices`` (conftest) scripted as the PaymentService: the HTTP ↔ gRPC mapping
over a real gRPC hop (error details such as ``retry_after_s`` cross in the ``error-bin``
trailer), the checks made before any call, the role checks, and the audit of the counter's
payment calls. The payment rules themselves are the payment service's tests; the flows
through the real services are ``test_payment_endpoints.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cqcommon.errors import (
    ALREADY_PAID,
    IDEMPOTENCY_KEY_IN_USE,
    MAINTENANCE_WINDOW,
    REFUND_NOT_PENDING,
    DomainError,
)
from cqdev.testing import error_body, traced
from cqtraffic.payment.v1 import payment_pb2 as pay
from google.protobuf.timestamp_pb2 import Timestamp

pytestmark = pytest.mark.integration

UserHeaders = Callable[..., Awaitable[dict[str, str]]]
AuditRow = Callable[[str], Awaitable[dict[str, Any]]]

DECISION_NO = "5001031234567890"


def ts(year: int, month: int, day: int, hour: int, minute: int) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=UTC))
    return out


def fail_with(error: DomainError) -> Any:
    def answer(_req: Any) -> Any:
        raise error

    return answer


def counter_payment(**overrides: Any) -> pay.Payment:
    values: dict[str, Any] = {
        "payment_id": "pay-1",
        "decision_no": DECISION_NO,
        "violation_id": "vio-1",
        "amount_fen": 20_000,
        "fine_fen": 20_000,
        "late_fee_fen": 0,
        "state": "succeeded",
        "out_trade_no": "20260301c0ffee",
        "channel": "counter_cash",
        "created_at": ts(2026, 3, 1, 2, 0),
        "paid_at": ts(2026, 3, 1, 2, 0),
    }
    return pay.Payment(**(values | overrides))


def refund(**overrides: Any) -> pay.Refund:
    values: dict[str, Any] = {
        "refund_id": "ref-1",
        "payment_id": "pay-2",
        "decision_no": DECISION_NO,
        "amount_fen": 20_000,
        "state": "pending_approval",
        "reason": "duplicate",
        "channel": "alipay",
        "created_at": ts(2026, 3, 1, 3, 0),
        "out_request_no": "RF20260301ab",
    }
    return pay.Refund(**(values | overrides))


# -- the maintenance window and idempotency answers cross gRPC intact ----------------------------
async def test_r_pay_6_maintenance_window_crosses_grpc_as_503_with_retry_after(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script(
        "CreatePayment",
        fail_with(
            DomainError(
                MAINTENANCE_WINDOW,
                details={"retry_after_s": 5400, "resumes_at": "2026-03-02T00:30:00+08:00"},
            )
        ),
    )
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=headers | {"Idempotency-Key": "k-1"},
    )
    assert r.status_code == 503, r.text
    assert error_body(r)["code"] == "MAINTENANCE_WINDOW"
    assert r.headers["retry-after"] == "5400"
    assert r.headers["cache-control"] == "no-store"


async def test_r_pay_3_a_key_in_flight_is_409(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script("CreatePayment", fail_with(DomainError(IDEMPOTENCY_KEY_IN_USE)))
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=headers | {"Idempotency-Key": "k-1"},
    )
    assert r.status_code == 409 and error_body(r)["code"] == "IDEMPOTENCY_KEY_IN_USE"


async def test_the_payment_request_carries_the_caller_the_key_and_a_fingerprint(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers(person_id="p-7")
    fake.script(
        "CreatePayment",
        lambda req: pay.CreatePaymentResponse(
            payment=counter_payment(
                payment_id="pay-9",
                channel="alipay",
                state="pending",
                provider_trade_no="2026030122001400000000000009",
                paid_at=None,
            )
        ),
    )
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=headers | {"Idempotency-Key": "k-9"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["trade_no"] == "2026030122001400000000000009"
    assert r.json()["paid_at"] is None
    (sent,) = fake.requests["CreatePayment"]
    assert (sent.caller.user_id, sent.caller.person_id) == ("2088000000000001", "p-7")
    assert sent.idempotency_key == "k-9" and len(sent.request_hash) == 64


# -- the counter -----------------------------------------------------------------------------
async def test_a_counter_payment_is_201_and_audited_with_decision_and_payment(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script(
        "CreateCounterPayment", lambda req: pay.CreatePaymentResponse(payment=counter_payment())
    )
    headers, trace_id = traced(clerk_headers | {"Idempotency-Key": "desk-1"})
    r = await client.post(
        "/internal/v1/payments/counter",
        json={"decision_no": f" {DECISION_NO} ", "method": "cash"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "counter_cash" and r.json()["trade_no"] is None
    (sent,) = fake.requests["CreateCounterPayment"]
    assert (sent.caller.staff_id, sent.caller.staff_role) == ("clerk01", "clerk")
    assert (sent.decision_no, sent.method, sent.idempotency_key) == (DECISION_NO, "cash", "desk-1")
    row = await audit_row(trace_id)
    assert row["subjects"] == [f"decision:{DECISION_NO}", "payment:pay-1"]
    assert row["status_code"] == 201


async def test_a_refused_counter_payment_is_audited_with_its_decision(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script("CreateCounterPayment", fail_with(DomainError(ALREADY_PAID)))
    headers, trace_id = traced(clerk_headers | {"Idempotency-Key": "desk-2"})
    r = await client.post(
        "/internal/v1/payments/counter",
        json={"decision_no": DECISION_NO, "method": "card"},
        headers=headers,
    )
    assert r.status_code == 409 and error_body(r)["code"] == "ALREADY_PAID"
    row = await audit_row(trace_id)
    assert row["subjects"] == [f"decision:{DECISION_NO}"] and row["status_code"] == 409


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        ({"decision_no": DECISION_NO, "method": "cash"}, None, 400, "IDEMPOTENCY_KEY_REQUIRED"),
        ({"decision_no": DECISION_NO, "method": "cheque"}, "k", 422, "VALIDATION_FAILED"),
        ({"decision_no": "12345", "method": "cash"}, "k", 400, "INVALID_DECISION_NO"),
    ],
    ids=["no-key", "method", "decision-no"],
)
async def test_a_counter_payment_is_checked_before_any_call(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    body: dict[str, str],
    key: str | None,
    status: int,
    code: str,
) -> None:
    headers = clerk_headers | ({"Idempotency-Key": key} if key else {})
    r = await client.post("/internal/v1/payments/counter", json=body, headers=headers)
    assert r.status_code == status and error_body(r)["code"] == code
    assert "CreateCounterPayment" not in fake.requests


async def test_refunds_pending_is_pending_approval_and_every_listed_refund_is_audited(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script("ListRefunds", lambda req: pay.ListRefundsResponse(refunds=[refund()]))
    headers, trace_id = traced(clerk_headers)
    r = await client.get("/internal/v1/refunds", params={"status": "pending"}, headers=headers)
    assert r.status_code == 200, r.text
    assert [x["state"] for x in r.json()["refunds"]] == ["pending_approval"]
    assert fake.requests["ListRefunds"][0].status == "pending_approval"
    row = await audit_row(trace_id)
    assert row["subjects"] == ["refund:ref-1", "payment:pay-2", f"decision:{DECISION_NO}"]
    r = await client.get("/internal/v1/refunds", params={"status": "lost"}, headers=clerk_headers)
    assert r.status_code == 422


async def test_r_pay_5_only_a_supervisor_approves_a_refund(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    supervisor_headers: dict[str, str],
    audit_row: AuditRow,
) -> None:
    fake.script("ApproveRefund", lambda req: refund(state="refunded", approved_by="super01"))
    r = await client.post("/internal/v1/refunds/ref-1/approve", headers=clerk_headers)
    assert r.status_code == 403 and error_body(r)["code"] == "FORBIDDEN"
    assert "ApproveRefund" not in fake.requests
    headers, trace_id = traced(supervisor_headers)
    r = await client.post("/internal/v1/refunds/ref-1/approve", headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["approved_by"]) == ("refunded", "super01")
    assert fake.requests["ApproveRefund"][0].caller.staff_role == "supervisor"
    row = await audit_row(trace_id)
    assert row["subjects"] == ["refund:ref-1", "payment:pay-2", f"decision:{DECISION_NO}"]
    fake.script("ApproveRefund", fail_with(DomainError(REFUND_NOT_PENDING)))
    r = await client.post("/internal/v1/refunds/ref-1/approve", headers=supervisor_headers)
    assert r.status_code == 409 and error_body(r)["code"] == "REFUND_NOT_PENDING"


async def test_r_pay_9_staff_see_feedback_with_the_provider_status(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script(
        "ListFeedback",
        lambda req: pay.ListFeedbackResponse(
            feedback=[
                pay.Feedback(
                    feedback_id="fb-1",
                    payment_id="pay-3",
                    decision_no=DECISION_NO,
                    text="已缴款但未销账",
                    created_at=ts(2026, 3, 1, 4, 0),
                    payment_state="pending",
                    out_trade_no="20260301beef",
                    provider_status="TRADE_SUCCESS",
                )
            ]
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get("/internal/v1/payments/feedback", params={"limit": 5}, headers=headers)
    assert r.status_code == 200, r.text
    (entry,) = r.json()["feedback"]
    assert (entry["payment_state"], entry["provider_status"]) == ("pending", "TRADE_SUCCESS")
    assert entry["created_at"] == "2026-03-01T12:00:00+08:00"
    assert fake.requests["ListFeedback"][0].limit == 5
    row = await audit_row(trace_id)
    assert row["subjects"] == ["payment:pay-3", f"decision:{DECISION_NO}"]


async def test_payment_staff_endpoints_need_a_staff_token(
    client: httpx.AsyncClient, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    for method, url in (
        ("GET", "/internal/v1/refunds"),
        ("GET", "/internal/v1/payments/feedback"),
        ("POST", "/internal/v1/refunds/ref-1/approve"),
    ):
        r = await client.request(method, url, headers=headers)
        assert r.status_code == 401, (method, url)
