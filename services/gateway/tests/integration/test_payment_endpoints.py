"""The payment endpoints through the gateway against the real services (R-PAY-1..9): the
in-process cluster of ``cqdev.testing`` with the payment service talking to the session's
fake Alipay (``fake_alipay``), which the tests pay at and whose signed notifications they
deliver to ``/api/v1/alipay/notify`` through the gateway's ASGI client.

The module runs a cluster of its own (``isolated_cluster``: its own database, Redis db and
topic prefix): each test records a fresh on-site decision (an enforcement system's record
carrying its decision number, R-PAY-1) on a fresh owner, so no test depends on another's
payments. The maintenance window (R-PAY-6) is off in that cluster, so nothing depends on
the hour the suite runs at; the window's own test puts a second payment server with the
window on and a fixed clock (on the same database) behind a second gateway app.

The payment rules themselves (concurrent creates, notification storms, the crash between
the provider's success and our commit) are the payment service's tests; these prove what
the HTTP side promises: the status codes, the replayed bytes, plain-text
``success``/``fail``, 404 for another user's payment with the very body of an unknown one,
``Cache-Control: no-store``, ``Retry-After`` and a real PDF.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cqcommon.clock import SHANGHAI, Clock, FixedClock
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.fake_alipay import FakeAlipay
from cqdev.stack import Stack, free_port
from cqdev.testing import (
    GATEWAY_BASE_URL,
    Cluster,
    Owner,
    error_body,
    eventually,
    isolated_cluster,
    new_owner,
    traced,
    violation_body,
    violation_code_record,
)
from cqgateway.app import create_app
from cqpayment.wiring import SPEC as PAYMENT

pytestmark = pytest.mark.integration

_rng = random.SystemRandom()


@pytest.fixture(scope="module")
async def cluster(stack: Stack, test_settings: Settings) -> AsyncIterator[Cluster]:
    # The R-PAY-6 window is off here, so no test depends on the hour it runs at; its own test
    # starts a payment server with the window on and a fixed clock.
    settings = test_settings.model_copy(
        update={"sandbox_mode": True, "payment_maintenance_window": ""}
    )
    async with isolated_cluster(stack, settings, label="gwpay") as running:
        await running.import_records([violation_code_record()])
        yield running


@dataclass(frozen=True)
class Decided:
    """An owner with an on-site decision on their car, logged in."""

    owner: Owner
    decision_no: str
    headers: dict[str, str]


def new_decision_no() -> str:
    """A Chongqing decision number (division 500103) no other test uses."""
    return "500103" + "".join(_rng.choice("0123456789") for _ in range(10))


async def decided(cluster: Cluster, *, fine_fen: int = 20_000) -> Decided:
    """A fresh owner, an on-site decision on their car dated today, and their login; returns
    once the payment service has learned the decision (from ViolationRecorded) and its
    party (from the registry's events, which another consumer group applies: on a cluster
    just started that group may still be joining when the decision is already known)."""
    owner = new_owner()
    await cluster.import_records(owner.records())
    decision_no = new_decision_no()
    today = dt.datetime.now(SHANGHAI).date()
    body = violation_body(
        owner.plate_number,
        f"gwpay-{uuid.uuid4().hex[:12]}",
        source="on_site",
        procedure="simple",
        fine_fen=fine_fen,
        # yesterday: never "in the future" whatever the hour
        occurred_at=dt.datetime.combine(
            today - dt.timedelta(days=1), dt.time(12, 5), SHANGHAI
        ).isoformat(),
        decision_no=decision_no,
        decision_date=today.isoformat(),
    )
    r = await cluster.record_violation(body)
    assert r.status_code == 201, r.text
    headers = await cluster.login(owner.alipay_user_id)

    async def known() -> bool:
        answer = await cluster.http.get(f"/api/v1/decisions/{decision_no}", headers=headers)
        return answer.status_code == 200 and answer.json()["own"] is True

    await eventually(known)
    return Decided(owner, decision_no, headers)


async def stranger(cluster: Cluster) -> dict[str, str]:
    """A logged-in Alipay user who is nobody's party (no registry person)."""
    return await cluster.login("2088" + "".join(_rng.choice("0123456789") for _ in range(12)))


async def create(
    cluster: Cluster, headers: dict[str, str], decision_no: str, key: str | None = None
) -> httpx.Response:
    return await cluster.http.post(
        "/api/v1/payments",
        json={"decision_no": decision_no},
        headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex},
    )


async def paid_online(cluster: Cluster, fake: FakeAlipay, d: Decided) -> dict[str, Any]:
    """Create, pay at the fake and deliver the genuine notification; the succeeded payment."""
    r = await create(cluster, d.headers, d.decision_no)
    assert r.status_code == 201, r.text
    out_trade_no = r.json()["out_trade_no"]
    fake.pay(out_trade_no)
    assert await cluster.alipay_notify(fake, out_trade_no) == "success"
    r = await cluster.http.get(f"/api/v1/payments/{r.json()['payment_id']}", headers=d.headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    return dict(r.json())


# -- GET /api/v1/decisions/{decision_no} (R-PAY-1, R-PAY-2) ------------------------------------
async def test_r_pay_1_a_decision_is_whole_for_its_party_and_masked_for_anyone_else(
    cluster: Cluster,
) -> None:
    d = await decided(cluster)
    own = await cluster.http.get(f"/api/v1/decisions/{d.decision_no}", headers=d.headers)
    assert own.status_code == 200, own.text
    assert own.headers["cache-control"] == "no-store"
    body = own.json()
    assert (body["own"], body["party_name"], body["plate_number"]) == (
        True,
        d.owner.name,
        d.owner.plate_number,
    )
    assert (body["state"], body["payable_here"], body["not_payable_code"]) == (
        "unpaid",
        True,
        None,
    )
    assert body["amount_due_fen"] == body["fine_fen"] == 20_000 and body["late_fee_fen"] == 0
    other = await cluster.http.get(
        f"/api/v1/decisions/{d.decision_no}", headers=await stranger(cluster)
    )
    assert other.status_code == 200, other.text
    assert other.json()["own"] is False
    assert other.json()["party_name"] != d.owner.name
    assert other.json()["plate_number"] != d.owner.plate_number
    assert other.json()["amount_due_fen"] == 20_000  # anyone may pay it (R-PAY-1)


async def test_r_pay_1_a_malformed_number_is_400_and_an_unknown_one_404(
    cluster: Cluster,
) -> None:
    headers = await stranger(cluster)
    r = await cluster.http.get("/api/v1/decisions/50010312345", headers=headers)
    assert r.status_code == 400 and error_body(r)["code"] == "INVALID_DECISION_NO"
    r = await cluster.http.get(f"/api/v1/decisions/{new_decision_no()}", headers=headers)
    assert r.status_code == 404 and error_body(r)["code"] == "DECISION_NOT_FOUND"


# -- POST /api/v1/payments (R-PAY-3) ---------------------------------------------------------------
async def test_r_pay_3_the_same_key_and_body_replay_the_same_bytes(cluster: Cluster) -> None:
    d = await decided(cluster)
    key = f"key-{uuid.uuid4()}"
    first = await create(cluster, d.headers, d.decision_no, key)
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    assert "idempotent-replayed" not in first.headers
    payment = first.json()
    assert (payment["state"], payment["channel"], payment["amount_fen"]) == (
        "pending",
        "alipay",
        20_000,
    )
    assert payment["trade_no"] and payment["out_trade_no"] and payment["expires_at"]
    # the same request: other key order and spacing, the number in full-width digits
    body = json.dumps(
        {
            "decision_no": d.decision_no.translate(
                str.maketrans("0123456789", "０１２３４５６７８９")
            )
        }
    )
    again = await cluster.http.post(
        "/api/v1/payments",
        content=f"  {body}  ".encode(),
        headers=d.headers | {"Idempotency-Key": key, "content-type": "application/json"},
    )
    assert again.status_code == 201, again.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_r_pay_3_the_same_key_with_another_body_is_422(cluster: Cluster) -> None:
    d = await decided(cluster)
    key = f"key-{uuid.uuid4()}"
    assert (await create(cluster, d.headers, d.decision_no, key)).status_code == 201
    r = await create(cluster, d.headers, new_decision_no(), key)
    assert r.status_code == 422, r.text
    assert error_body(r)["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_r_pay_3_no_key_is_400(cluster: Cluster) -> None:
    d = await decided(cluster)
    r = await cluster.http.post(
        "/api/v1/payments", json={"decision_no": d.decision_no}, headers=d.headers
    )
    assert r.status_code == 400 and error_body(r)["code"] == "IDEMPOTENCY_KEY_REQUIRED"


async def test_r_pay_3_a_paid_decision_is_409_already_paid(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    d = await decided(cluster)
    await paid_online(cluster, fake_alipay, d)
    r = await create(cluster, d.headers, d.decision_no)
    assert r.status_code == 409 and error_body(r)["code"] == "ALREADY_PAID"
    r = await cluster.http.get(f"/api/v1/decisions/{d.decision_no}", headers=d.headers)
    assert r.json()["state"] == "paid"


# -- POST /api/v1/alipay/notify (R-PAY-7) ------------------------------------------------------------
async def test_r_pay_7_a_forged_notification_is_not_success_and_a_genuine_one_settles(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    d = await decided(cluster)
    r = await create(cluster, d.headers, d.decision_no)
    assert r.status_code == 201, r.text
    payment_id, out_trade_no = r.json()["payment_id"], r.json()["out_trade_no"]
    fake_alipay.pay(out_trade_no)
    assert await cluster.alipay_notify(fake_alipay, out_trade_no, forged=True) != "success"
    cheaper = {"total_amount": "0.01", "receipt_amount": "0.01", "buyer_pay_amount": "0.01"}
    assert await cluster.alipay_notify(fake_alipay, out_trade_no, overrides=cheaper) != "success"
    assert await cluster.alipay_notify(fake_alipay, out_trade_no) == "success"
    # a redelivery is answered success again and changes nothing
    assert await cluster.alipay_notify(fake_alipay, out_trade_no) == "success"
    r = await cluster.http.get(f"/api/v1/payments/{payment_id}", headers=d.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "succeeded" and r.json()["paid_at"]
    assert r.headers["cache-control"] == "no-store"


async def test_r_pay_7_a_notification_that_is_not_a_form_is_plain_fail(cluster: Cluster) -> None:
    r = await cluster.http.post("/api/v1/alipay/notify", json={"notify_id": "1"})
    assert (r.status_code, r.text) == (400, "fail")
    r = await cluster.http.post(
        "/api/v1/alipay/notify", data={"notify_id": "1", "out_trade_no": "nope"}
    )
    assert r.status_code == 400 and r.text == "fail"


# -- receipts, feedback, and another user's payment -------------------------------------------
async def test_r_pay_8_a_paid_decision_has_a_pdf_receipt_a_pending_one_409(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    d = await decided(cluster)
    pending = await create(cluster, d.headers, d.decision_no)
    r = await cluster.http.get(
        f"/api/v1/payments/{pending.json()['payment_id']}/receipt.pdf", headers=d.headers
    )
    assert r.status_code == 409 and error_body(r)["code"] == "RECEIPT_NOT_AVAILABLE"
    fake_alipay.pay(pending.json()["out_trade_no"])
    assert await cluster.alipay_notify(fake_alipay, pending.json()["out_trade_no"]) == "success"
    r = await cluster.http.get(
        f"/api/v1/payments/{pending.json()['payment_id']}/receipt.pdf", headers=d.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    assert r.headers["content-disposition"] == f'attachment; filename="receipt-{d.decision_no}.pdf"'
    assert r.headers["cache-control"] == "no-store"


async def test_another_users_payment_is_404_with_the_body_of_an_unknown_one(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    d = await decided(cluster)
    payment = await paid_online(cluster, fake_alipay, d)
    other = await stranger(cluster)
    unknown = str(uuid.uuid4())
    calls = [
        ("GET", "/api/v1/payments/{id}", None),
        ("GET", "/api/v1/payments/{id}/receipt.pdf", None),
        ("POST", "/api/v1/payments/{id}/feedback", {"text": "已缴款但未销账"}),
    ]
    for method, template, body in calls:
        answers = [
            await cluster.http.request(
                method, template.format(id=payment_id), json=body, headers=other
            )
            for payment_id in (payment["payment_id"], unknown)
        ]
        foreign, missing = answers
        assert foreign.status_code == missing.status_code == 404, (template, foreign.text)
        assert error_body(foreign)["code"] == "PAYMENT_NOT_FOUND"
        assert foreign.content == missing.content, template
        assert foreign.headers["cache-control"] == "no-store"


async def test_r_pay_9_feedback_is_filed_and_staff_see_it_with_the_provider_status(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    d = await decided(cluster)
    payment = await paid_online(cluster, fake_alipay, d)
    text = f"已缴款但未销账 {uuid.uuid4().hex[:6]}\n请核实"
    r = await cluster.http.post(
        f"/api/v1/payments/{payment['payment_id']}/feedback", json={"text": text}, headers=d.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["feedback_id"] and r.json()["created_at"]
    staff = await cluster.staff()
    r = await cluster.http.get("/internal/v1/payments/feedback", headers=staff)
    assert r.status_code == 200, r.text
    (entry,) = [f for f in r.json()["feedback"] if f["text"] == text]
    assert entry["payment_id"] == payment["payment_id"]
    assert (entry["payment_state"], entry["provider_status"]) == ("succeeded", "TRADE_SUCCESS")


# -- the counter (R-PAY-3, R-PAY-5) -------------------------------------------------------------
async def test_a_counter_payment_is_idempotent_audited_and_pays_the_decision(
    cluster: Cluster,
) -> None:
    d = await decided(cluster)
    clerk = await cluster.staff("clerk01")
    headers, trace_id = traced(clerk | {"Idempotency-Key": f"desk-{uuid.uuid4()}"})
    body = {"decision_no": d.decision_no, "method": "cash"}
    first = await cluster.http.post("/internal/v1/payments/counter", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["state"], first.json()["channel"], first.json()["trade_no"]) == (
        "succeeded",
        "counter_cash",
        None,
    )
    again = await cluster.http.post("/internal/v1/payments/counter", json=body, headers=headers)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    card = await cluster.http.post(
        "/internal/v1/payments/counter", json=body | {"method": "card"}, headers=headers
    )
    assert card.status_code == 422 and error_body(card)["code"] == "IDEMPOTENCY_KEY_REUSED"
    r = await cluster.http.get(f"/api/v1/decisions/{d.decision_no}", headers=d.headers)
    assert r.json()["state"] == "paid"
    supervisor = await cluster.staff("super01")
    r = await cluster.http.get(
        "/internal/v1/audit", params={"subject": f"decision:{d.decision_no}"}, headers=supervisor
    )
    rows = [row for row in r.json()["entries"] if row["trace_id"] == trace_id]
    assert rows and all(
        row["subjects"][:2]
        == [f"decision:{d.decision_no}", f"payment:{first.json()['payment_id']}"]
        for row in rows
        if row["status_code"] == 201
    )


async def test_r_pay_5_a_duplicate_success_is_refunded_once_a_supervisor_approves(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    """Counter cash while the online trade cannot be closed (Alipay unreachable), then the
    online payment succeeds too: the later one is `duplicate` with a refund to approve."""
    d = await decided(cluster)
    online = await create(cluster, d.headers, d.decision_no)
    assert online.status_code == 201, online.text
    out_trade_no = online.json()["out_trade_no"]
    fake_alipay.fail_next("alipay.trade.close")  # the counter tries once, then takes the card
    clerk = await cluster.staff("clerk01")
    counter = await cluster.http.post(
        "/internal/v1/payments/counter",
        json={"decision_no": d.decision_no, "method": "card"},
        headers=clerk | {"Idempotency-Key": f"desk-{uuid.uuid4()}"},
    )
    assert counter.status_code == 201, counter.text
    fake_alipay.pay(out_trade_no)
    assert await cluster.alipay_notify(fake_alipay, out_trade_no) == "success"
    r = await cluster.http.get(f"/api/v1/payments/{online.json()['payment_id']}", headers=d.headers)
    assert r.json()["state"] == "duplicate", r.text
    r = await cluster.http.get("/internal/v1/refunds", params={"status": "pending"}, headers=clerk)
    assert r.status_code == 200, r.text
    (refund,) = [x for x in r.json()["refunds"] if x["payment_id"] == online.json()["payment_id"]]
    assert (refund["state"], refund["reason"], refund["amount_fen"]) == (
        "pending_approval",
        "duplicate",
        20_000,
    )
    r = await cluster.http.post(
        f"/internal/v1/refunds/{refund['refund_id']}/approve", headers=clerk
    )
    assert r.status_code == 403
    supervisor = await cluster.staff("super01")
    r = await cluster.http.post(
        f"/internal/v1/refunds/{refund['refund_id']}/approve", headers=supervisor
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refunded" and r.json()["approved_by"]
    trade = fake_alipay.trade(out_trade_no)
    assert trade is not None and trade.refunded_fen == 20_000


# -- R-PAY-4, R-PAY-6 ------------------------------------------------------------------------------
async def test_r_pay_4_reading_a_payment_paid_at_alipay_without_notification_settles_it(
    cluster: Cluster, fake_alipay: FakeAlipay
) -> None:
    """The notification is lost (our side "timed out"): the next status read asks Alipay."""
    d = await decided(cluster)
    r = await create(cluster, d.headers, d.decision_no)
    assert r.status_code == 201, r.text
    fake_alipay.pay(r.json()["out_trade_no"])
    creates = len(fake_alipay.calls_of("alipay.trade.create"))
    read = await cluster.http.get(f"/api/v1/payments/{r.json()['payment_id']}", headers=d.headers)
    assert read.status_code == 200, read.text
    assert read.json()["state"] == "succeeded" and read.json()["paid_at"]
    assert len(fake_alipay.calls_of("alipay.trade.create")) == creates  # never charged again


@contextlib.asynccontextmanager
async def gateway_with_payment_at(
    cluster: Cluster, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """A second payment server on the cluster's database (it knows the same decisions), with
    the R-PAY-6 window on and ``clock`` as its time, and a gateway app in front of it."""
    settings = cluster.settings.model_copy(update={"payment_maintenance_window": "22:00-00:30"})
    runtime = ServiceRuntime(PAYMENT, settings, roles=("serve",), port=free_port(), clock=clock)
    await runtime.start()
    try:
        app = create_app(
            settings.model_copy(update={"payment_service_addr": f"127.0.0.1:{runtime.port}"})
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=GATEWAY_BASE_URL
            ) as http,
        ):
            yield http
    finally:
        await runtime.stop(grace_s=1)


async def test_r_pay_6_in_the_maintenance_window_a_payment_is_503_with_retry_after(
    cluster: Cluster,
) -> None:
    """At 22:30 Beijing time payments resume in exactly two hours (00:30): 503 with
    ``Retry-After: 7200``, online and at the counter, and nothing is created."""
    d = await decided(cluster)
    at = dt.datetime.combine(dt.datetime.now(SHANGHAI).date(), dt.time(22, 30), SHANGHAI)
    clerk = await cluster.staff("clerk01")
    async with gateway_with_payment_at(cluster, FixedClock(at)) as http:
        r = await http.post(
            "/api/v1/payments",
            json={"decision_no": d.decision_no},
            headers=d.headers | {"Idempotency-Key": f"key-{uuid.uuid4()}"},
        )
        assert r.status_code == 503, r.text
        assert error_body(r)["code"] == "MAINTENANCE_WINDOW"
        assert error_body(r)["message_zh"] and error_body(r)["message_en"]
        assert r.headers["retry-after"] == "7200"
        r = await http.post(
            "/internal/v1/payments/counter",
            json={"decision_no": d.decision_no, "method": "cash"},
            headers=clerk | {"Idempotency-Key": f"desk-{uuid.uuid4()}"},
        )
        assert r.status_code == 503 and r.headers["retry-after"] == "7200"
    r = await cluster.http.get(f"/api/v1/decisions/{d.decision_no}", headers=d.headers)
    assert r.json()["state"] == "unpaid"
