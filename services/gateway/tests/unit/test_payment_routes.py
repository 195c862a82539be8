"""The gateway's payment routes without I/O: the Idempotency-Key check and the request
fingerprint (R-PAY-3), the payment and decision mappers, the Alipay notification's form
parsing (R-PAY-7), and the routes themselves over a stub PaymentService (an object whose
methods answer what the test says; no gRPC, no database): Retry-After of the maintenance
window (R-PAY-6), the replay header and bytes, plain-text `success` / `fail`, the receipt's
headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cqcommon.errors import (
    ALIPAY_UNAVAILABLE,
    CATALOGUE,
    IDEMPOTENCY_KEY_REUSED,
    MAINTENANCE_WINDOW,
    PAYMENT_NOT_FOUND,
    DomainError,
)
from cqcommon.settings import Settings
from cqgateway import mappers
from cqgateway.app import create_app
from cqgateway.errors import error_response
from cqgateway.idempotency import canonical_request, idempotency_key, request_hash
from cqgateway.routers.alipay_notify import (
    NOTIFY_MAX_BYTES,
    NotificationRefusedError,
    loggable_order_no,
    parse_notification,
)
from cqgateway.schemas import CounterPaymentBody, CreatePaymentBody
from cqgateway.tokens import TokenCodec
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.payment.v1 import payment_pb2 as pay
from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp

SECRET = "unit-secret-" + "x" * 40
DECISION_NO = "5001031234567890"
FORM = "application/x-www-form-urlencoded"


def ts(year: int, month: int, day: int, hour: int, minute: int) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=UTC))
    return out


def payment(**overrides: Any) -> pay.Payment:
    values: dict[str, Any] = {
        "payment_id": "6f1c2d3e-0000-4000-8000-000000000001",
        "decision_no": DECISION_NO,
        "violation_id": "v-1",
        "amount_fen": 20_600,
        "fine_fen": 20_000,
        "late_fee_fen": 600,
        "state": "pending",
        "out_trade_no": "20260301a1b2c3d4e5f6a7b8c9d0e1f2",
        "provider_trade_no": "2026030122001400000000000001",
        "channel": "alipay",
        "created_at": ts(2026, 3, 1, 2, 0),
        "expires_at": ts(2026, 3, 1, 16, 0),
    }
    return pay.Payment(**(values | overrides))


# -- 1. the Idempotency-Key header and the fingerprint (R-PAY-3) --------------------------------
@pytest.mark.parametrize("values", [[], [""]], ids=["missing", "empty"])
def test_r_pay_3_a_missing_key_is_idempotency_key_required(values: list[str]) -> None:
    with pytest.raises(DomainError) as info:
        idempotency_key(values)
    assert info.value.code == "IDEMPOTENCY_KEY_REQUIRED"


@pytest.mark.parametrize(
    "values",
    [["has space"], ["ключ"], ["k" * 256], ["tab\tkey"], ["a", "b"], ["a", "a"]],
    ids=["space", "non-ascii", "too-long", "control", "two-keys", "same-key-twice"],
)
def test_r_pay_3_a_malformed_or_repeated_key_is_idempotency_key_invalid(
    values: list[str],
) -> None:
    with pytest.raises(DomainError) as info:
        idempotency_key(values)
    assert info.value.code == "IDEMPOTENCY_KEY_INVALID"


@pytest.mark.parametrize("key", ["a", "k" * 255, "9b2f6c1e-1c1d-4d4a-9a57-2f1d8c3b4a5e", "!~"])
def test_visible_ascii_keys_of_1_to_255_characters_are_taken_as_sent(key: str) -> None:
    assert idempotency_key([key]) == key


def test_r_pay_3_the_fingerprint_ignores_key_order_and_is_sha256_of_canonical_json() -> None:
    a = {"decision_no": DECISION_NO, "method": "cash"}
    b = {"method": "cash", "decision_no": DECISION_NO}
    assert canonical_request("POST /x", a) == canonical_request("POST /x", b)
    expected = b'{"body":{"decision_no":"5001031234567890","method":"cash"},"operation":"POST /x"}'
    assert canonical_request("POST /x", a) == expected
    assert request_hash("POST /x", a) == hashlib.sha256(expected).hexdigest()
    assert request_hash("POST /x", a) != request_hash("POST /y", a)
    assert request_hash("POST /x", a) != request_hash("POST /x", a | {"method": "card"})


def test_r_pay_3_the_same_decision_spelled_otherwise_is_the_same_request() -> None:
    caller = common.Caller(user_id="2088000000000001")
    plain = mappers.create_payment_request(caller, CreatePaymentBody(decision_no=DECISION_NO), "k")
    wide = mappers.create_payment_request(
        caller, CreatePaymentBody(decision_no="５００１０３ １２３４５６７８９０"), "k"
    )
    other = mappers.create_payment_request(
        caller, CreatePaymentBody(decision_no="5001031234567891"), "k"
    )
    assert wide.decision_no == plain.decision_no == DECISION_NO
    assert wide.request_hash == plain.request_hash != other.request_hash
    assert plain.idempotency_key == "k" and plain.caller == caller


def test_online_and_counter_payments_of_one_decision_never_share_a_fingerprint() -> None:
    caller = common.Caller(staff_id="clerk01", staff_role="clerk")
    counter = mappers.counter_payment_request(
        caller, CounterPaymentBody(decision_no=DECISION_NO, method="cash"), "k"
    )
    card = mappers.counter_payment_request(
        caller, CounterPaymentBody(decision_no=DECISION_NO, method="card"), "k"
    )
    online = mappers.create_payment_request(caller, CreatePaymentBody(decision_no=DECISION_NO), "k")
    assert counter.method == "cash"
    assert len({counter.request_hash, card.request_hash, online.request_hash}) == 3


def test_a_malformed_decision_number_in_a_body_is_invalid_decision_no() -> None:
    with pytest.raises(DomainError) as info:
        mappers.create_payment_request(
            common.Caller(), CreatePaymentBody(decision_no="50010312345"), "k"
        )
    assert info.value.code == "INVALID_DECISION_NO"


# -- 2. mappers ------------------------------------------------------------------------------------
def test_r_pay_3_a_payment_renders_to_the_same_bytes_every_time() -> None:
    first = mappers.payment_out(payment()).model_dump_json()
    again = mappers.payment_out(pay.Payment.FromString(payment().SerializeToString()))
    assert again.model_dump_json() == first
    out = mappers.payment_out(payment())
    assert out.trade_no == "2026030122001400000000000001"
    assert out.created_at is not None and out.created_at.isoformat() == "2026-03-01T10:00:00+08:00"
    assert out.expires_at is not None and out.expires_at.isoformat() == "2026-03-02T00:00:00+08:00"
    assert out.paid_at is None and out.failure_reason is None


def test_a_counter_payment_has_no_trade_number() -> None:
    out = mappers.payment_out(
        payment(channel="counter_cash", provider_trade_no="", state="succeeded")
    )
    assert out.trade_no is None and out.channel == "counter_cash"


@pytest.mark.parametrize(
    "overrides", [{"state": "paid"}, {"channel": "wechat"}], ids=["state", "channel"]
)
def test_a_payment_outside_the_contract_is_an_internal_error(overrides: dict[str, str]) -> None:
    with pytest.raises(DomainError) as info:
        mappers.payment_out(payment(**overrides))
    assert info.value.code == "INTERNAL_ERROR"


def test_a_creation_without_a_payment_is_an_internal_error() -> None:
    with pytest.raises(DomainError) as info:
        mappers.created_payment_out(pay.CreatePaymentResponse())
    assert info.value.code == "INTERNAL_ERROR"


def decision(**overrides: Any) -> pay.PayableDecision:
    values: dict[str, Any] = {
        "decision_no": DECISION_NO,
        "violation_id": "v-1",
        "decision_date": common.Date(year=2026, month=2, day=1),
        "due_date": common.Date(year=2026, month=2, day=16),
        "fine_fen": 20_000,
        "late_fee_fen": 600,
        "amount_due_fen": 20_600,
        "state": "unpaid",
        "days_late": 1,
        "payable_here": True,
        "authority_code": "500103",
        "own": False,
        "party_name": "张*",
        "plate_number": "渝A***45",
        "points": 3,
    }
    return pay.PayableDecision(**(values | overrides))


def test_r_pay_1_a_decision_not_payable_here_carries_its_code_and_sentences() -> None:
    out = mappers.payable_decision_out(
        decision(
            decision_no="1101051234567890",
            payable_here=False,
            not_payable_code="DECISION_NOT_PAYABLE_HERE",
        )
    )
    spec = CATALOGUE["DECISION_NOT_PAYABLE_HERE"]
    assert (out.not_payable_code, out.not_payable_message_zh, out.not_payable_message_en) == (
        spec.code,
        spec.message_zh,
        spec.message_en,
    )
    payable = mappers.payable_decision_out(decision())
    assert payable.payable_here and payable.not_payable_code is None
    assert (payable.party_name, payable.plate_number, payable.own) == ("张*", "渝A***45", False)
    assert str(payable.due_date) == "2026-02-16" and payable.occurred_at is None


def test_r_pay_1_an_unknown_not_payable_code_is_an_internal_error() -> None:
    with pytest.raises(DomainError) as info:
        mappers.payable_decision_out(decision(payable_here=False, not_payable_code="PAY_ABROAD"))
    assert info.value.code == "INTERNAL_ERROR"


def test_refund_filter_pending_is_api_md_s_name_for_pending_approval() -> None:
    assert mappers.refund_state_filter("pending") == "pending_approval"
    assert mappers.refund_state_filter("refunded") == "refunded"
    assert mappers.refund_state_filter(None) == ""


def test_refund_and_feedback_mappers() -> None:
    refund = mappers.refund_out(
        pay.Refund(
            refund_id="r-1",
            payment_id="p-2",
            decision_no=DECISION_NO,
            amount_fen=20_000,
            state="pending_approval",
            reason="duplicate",
            channel="alipay",
            created_at=ts(2026, 3, 1, 2, 0),
            out_request_no="RF-1",
        )
    )
    assert refund.state == "pending_approval" and refund.approved_by is None
    assert refund.refunded_at is None and refund.out_request_no == "RF-1"
    listing = mappers.staff_feedback_list_out(
        pay.ListFeedbackResponse(
            feedback=[
                pay.Feedback(
                    feedback_id="f-1",
                    payment_id="p-1",
                    decision_no=DECISION_NO,
                    text="已缴款但未销账",
                    payment_state="pending",
                    out_trade_no="o-1",
                    provider_status="TRADE_SUCCESS",
                )
            ]
        )
    )
    assert listing.feedback[0].provider_status == "TRADE_SUCCESS"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("receipt-5001031234567890.pdf", "receipt-5001031234567890.pdf"),
        ('a".pdf', "receipt.pdf"),
        ("a\r\nSet-Cookie: x.pdf", "receipt.pdf"),
        ("缴款凭证.pdf", "receipt.pdf"),
        ("", "receipt.pdf"),
    ],
)
def test_the_attachment_name_is_a_plain_token_or_the_fallback(name: str, expected: str) -> None:
    assert mappers.attachment_filename(name) == expected


def test_status_of_reused_key_is_422_and_maintenance_has_retry_after() -> None:
    assert error_response(DomainError(IDEMPOTENCY_KEY_REUSED)).status_code == 422
    window = error_response(DomainError(MAINTENANCE_WINDOW, details={"retry_after_s": 1799.2}))
    assert window.status_code == 503 and window.headers["retry-after"] == "1800"


# -- 3. the notification form (R-PAY-7) -------------------------------------------------------------
def genuine_fields() -> dict[str, str]:
    return {
        "notify_id": "2026030100222000000000000001",
        "notify_type": "trade_status_sync",
        "notify_time": "2026-03-01 10:00:05",
        "app_id": "2021000000000000",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "sign": "aBc+/=" * 40,
        "out_trade_no": "20260301a1b2c3d4e5f6a7b8c9d0e1f2",
        "trade_no": "2026030122001400000000000001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "206.00",
        "subject": "重庆交警罚款 5001031234567890",
        "fund_bill_list": '[{"amount":"206.00","fundChannel":"ALIPAYACCOUNT"}]',
    }


@pytest.mark.parametrize(
    "content_type",
    [FORM, f"{FORM}; charset=utf-8", f"{FORM}; charset=UTF-8", f"{FORM};charset=utf8"],
)
def test_a_genuine_notification_parses_to_exactly_its_fields(content_type: str) -> None:
    fields = genuine_fields()
    assert parse_notification(urlencode(fields).encode(), content_type) == fields


def test_plus_and_percent_escapes_decode_as_alipay_encodes_them() -> None:
    body = b"subject=%E9%87%8D%E5%BA%86+%E7%BD%9A%E6%AC%BE&sign=a%2Bb%3D&empty="
    assert parse_notification(body, FORM) == {"subject": "重庆 罚款", "sign": "a+b=", "empty": ""}


def test_line_breaks_pass_only_in_free_text_fields() -> None:
    assert parse_notification(urlencode({"body": "a\nb"}).encode(), FORM) == {"body": "a\nb"}
    with pytest.raises(NotificationRefusedError) as info:
        parse_notification(urlencode({"sign": "a\nb"}).encode(), FORM)
    assert info.value.reason == "invalid_characters"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"notify_id": "1"}', "application/json", "not_form"),
        (b"notify_id=1", "", "not_form"),
        (b"notify_id=1", "multipart/form-data; boundary=x", "not_form"),
        (b"notify_id=1", f"{FORM}; charset=gbk", "not_form"),
        (b"", FORM, "empty"),
        (b"notify_id", FORM, "malformed"),
        (b"subject=%E9%87", FORM, "malformed"),  # a cut UTF-8 sequence
        (b"subject=\xff", FORM, "malformed"),
        ("&".join(f"f{i}=1" for i in range(101)).encode(), FORM, "malformed"),
        (b"notify_id=1&notify_id=2", FORM, "duplicate_field"),
        (b"notify_id=1%002", FORM, "invalid_characters"),
        (b"notify%00id=1", FORM, "invalid_characters"),
        (b"subject=%E2%80%AEabc", FORM, "invalid_characters"),  # bidi override
        (b"subject=a%1Bb", FORM, "invalid_characters"),
        (b"=1", FORM, "invalid_characters"),
        (b"x=" + b"a" * NOTIFY_MAX_BYTES, FORM, "too_large"),
    ],
)
def test_r_pay_7_a_malformed_notification_is_refused_with_a_stable_reason(
    body: bytes, content_type: str, reason: str
) -> None:
    with pytest.raises(NotificationRefusedError) as info:
        parse_notification(body, content_type)
    assert info.value.reason == reason


def test_only_a_plain_order_number_is_logged() -> None:
    assert loggable_order_no({"out_trade_no": "2026abc_-"}) == "2026abc_-"
    assert loggable_order_no({"out_trade_no": "x y\n"}) == "-"
    assert loggable_order_no({}) == "-"


# -- 4. the routes over a stub PaymentService ----------------------------------------------------
Answer = Callable[[Any], Any]


class StubPayment:
    """PaymentService methods answering what ``answers[name]`` says (a message, or raises)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        async def method(request: Any, *, timeout: float) -> Any:  # noqa: ASYNC109 - a stub's signature
            assert timeout > 0  # every call has a deadline
            self.requests.setdefault(name, []).append(request)
            return self.answers[name](request)

        return method


@pytest.fixture
def stub() -> StubPayment:
    return StubPayment()


@pytest.fixture
async def client(stub: StubPayment) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(Settings(token_secret=SECRET))
    # No lifespan: only the payment stub is attached (require_backends finds it).
    app.state.gateway.backends = SimpleNamespace(payment=stub)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        yield c


@pytest.fixture
def user() -> dict[str, str]:
    token = TokenCodec(SECRET, user_ttl_s=600, staff_ttl_s=600).issue_user(
        "2088000000000001", "p-1"
    )
    return {"Authorization": f"Bearer {token.token}"}


def fail_with(error: DomainError) -> Answer:
    def answer(_request: Any) -> Any:
        raise error

    return answer


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["code"])


async def test_a_malformed_decision_number_is_400_before_any_call(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    for bad in ("123", "50010312345678901", "abcdefghijklmnop", "0001031234567890"):
        r = await client.get(f"/api/v1/decisions/{bad}", headers=user)
        assert r.status_code == 400, (bad, r.text)
        assert error_code(r) == "INVALID_DECISION_NO"
    assert stub.requests == {}


async def test_a_decision_is_asked_with_the_caller_and_rendered(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    stub.answers["GetDecision"] = lambda _req: decision(own=True, party_name="张伟")
    r = await client.get(f"/api/v1/decisions/{DECISION_NO}", headers=user)
    assert r.status_code == 200, r.text
    assert r.json()["amount_due_fen"] == 20_600 and r.json()["party_name"] == "张伟"
    assert r.headers["cache-control"] == "no-store"
    (sent,) = stub.requests["GetDecision"]
    assert sent.caller.user_id == "2088000000000001" and sent.decision_no == DECISION_NO


async def test_r_pay_3_no_key_is_400_before_any_call(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    r = await client.post("/api/v1/payments", json={"decision_no": DECISION_NO}, headers=user)
    assert r.status_code == 400 and error_code(r) == "IDEMPOTENCY_KEY_REQUIRED"
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=user | {"Idempotency-Key": "a b"},
    )
    assert r.status_code == 400 and error_code(r) == "IDEMPOTENCY_KEY_INVALID"
    assert stub.requests == {}


async def test_r_pay_3_a_replay_is_the_same_bytes_with_the_replayed_header(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    replays = iter([False, True])
    stub.answers["CreatePayment"] = lambda _req: pay.CreatePaymentResponse(
        payment=payment(), replayed=next(replays)
    )
    headers = user | {"Idempotency-Key": "key-1"}
    first = await client.post(
        "/api/v1/payments", json={"decision_no": DECISION_NO}, headers=headers
    )
    again = await client.post(
        "/api/v1/payments",
        content=b'{ "decision_no" : "5001031234567890" }',
        headers=headers | {"content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["trade_no"] == "2026030122001400000000000001"
    one, two = stub.requests["CreatePayment"]
    assert one.idempotency_key == two.idempotency_key == "key-1"
    assert one.request_hash == two.request_hash


async def test_r_pay_3_a_key_reused_with_another_body_is_422(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    stub.answers["CreatePayment"] = fail_with(DomainError(IDEMPOTENCY_KEY_REUSED))
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=user | {"Idempotency-Key": "key-1"},
    )
    assert r.status_code == 422 and error_code(r) == "IDEMPOTENCY_KEY_REUSED"


async def test_r_pay_6_the_maintenance_window_is_503_with_retry_after(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    stub.answers["CreatePayment"] = fail_with(
        DomainError(
            MAINTENANCE_WINDOW,
            details={"retry_after_s": 9000, "resumes_at": "2026-03-02T00:30:00+08:00"},
        )
    )
    r = await client.post(
        "/api/v1/payments",
        json={"decision_no": DECISION_NO},
        headers=user | {"Idempotency-Key": "key-1"},
    )
    assert r.status_code == 503 and error_code(r) == "MAINTENANCE_WINDOW"
    assert r.headers["retry-after"] == "9000"
    assert r.json()["error"]["message_zh"] and r.json()["error"]["message_en"]


async def test_receipt_is_a_pdf_attachment_that_no_cache_keeps(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    stub.answers["GetReceipt"] = lambda _req: pay.Document(
        filename=f"receipt-{DECISION_NO}.pdf", content_type="application/pdf", content=b"%PDF-1.7"
    )
    r = await client.get("/api/v1/payments/p-1/receipt.pdf", headers=user)
    assert r.status_code == 200 and r.content == b"%PDF-1.7"
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="receipt-{DECISION_NO}.pdf"'
    assert r.headers["cache-control"] == "no-store"


async def test_feedback_is_201_and_payment_not_found_passes_through(
    client: httpx.AsyncClient, stub: StubPayment, user: dict[str, str]
) -> None:
    stub.answers["FileFeedback"] = lambda _req: pay.FileFeedbackResponse(
        feedback_id="f-1", created_at=ts(2026, 3, 1, 2, 0)
    )
    r = await client.post(
        "/api/v1/payments/p-1/feedback", json={"text": " 已缴款\n但未销账 "}, headers=user
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"feedback_id": "f-1", "created_at": "2026-03-01T10:00:00+08:00"}
    assert stub.requests["FileFeedback"][0].text == "已缴款\n但未销账"
    stub.answers["GetPayment"] = fail_with(DomainError(PAYMENT_NOT_FOUND))
    r = await client.get("/api/v1/payments/p-1", headers=user)
    assert r.status_code == 404 and error_code(r) == "PAYMENT_NOT_FOUND"


async def notify(
    client: httpx.AsyncClient, body: bytes, content_type: str = FORM
) -> httpx.Response:
    return await client.post(
        "/api/v1/alipay/notify", content=body, headers={"content-type": content_type}
    )


async def test_r_pay_7_an_accepted_notification_is_answered_exactly_success(
    client: httpx.AsyncClient, stub: StubPayment
) -> None:
    stub.answers["RecordProviderNotification"] = lambda _req: pay.ProviderNotificationResponse(
        accepted=True
    )
    fields = genuine_fields()
    r = await notify(client, urlencode(fields).encode(), f"{FORM}; charset=utf-8")
    assert (r.status_code, r.text) == (200, "success")
    assert r.headers["content-type"].startswith("text/plain")
    (sent,) = stub.requests["RecordProviderNotification"]
    assert dict(sent.params) == fields  # every field as posted, Chinese subject included


async def test_r_pay_7_a_rejected_notification_is_fail_and_logged_without_its_signature(
    client: httpx.AsyncClient, stub: StubPayment, caplog: pytest.LogCaptureFixture
) -> None:
    stub.answers["RecordProviderNotification"] = lambda _req: pay.ProviderNotificationResponse(
        accepted=False, rejected_reason="bad_signature"
    )
    fields = genuine_fields()
    with caplog.at_level("WARNING", logger="cqgateway.alipay_notify"):
        r = await notify(client, urlencode(fields).encode())
    assert (r.status_code, r.text) == (400, "fail")
    assert "bad_signature" in caplog.text and fields["out_trade_no"] in caplog.text
    assert fields["sign"] not in caplog.text and "ALIPAYACCOUNT" not in caplog.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"notify_id": "1"}', "application/json"),
        (b"notify_id=1%00", FORM),
        (b"notify_id=1&notify_id=2", FORM),
        (b"\xff\xfe", FORM),
    ],
    ids=["json", "nul", "duplicate", "not-utf8"],
)
async def test_r_pay_7_a_malformed_notification_is_plain_fail_and_reaches_no_service(
    client: httpx.AsyncClient, stub: StubPayment, body: bytes, content_type: str
) -> None:
    r = await notify(client, body, content_type)
    assert (r.status_code, r.text) == (400, "fail")
    assert stub.requests == {}


@pytest.mark.parametrize(
    "error",
    [DomainError(ALIPAY_UNAVAILABLE), DomainError(CATALOGUE["SERVICE_UNAVAILABLE"])],
    ids=["unavailable", "service-down"],
)
async def test_r_pay_7_a_service_that_cannot_answer_is_never_success(
    client: httpx.AsyncClient, stub: StubPayment, error: DomainError
) -> None:
    stub.answers["RecordProviderNotification"] = fail_with(error)
    r = await notify(client, urlencode(genuine_fields()).encode())
    assert (r.status_code, r.text) == (503, "fail")


async def test_r_pay_7_an_unexpected_failure_is_fail_never_a_500_body(
    client: httpx.AsyncClient, stub: StubPayment
) -> None:
    def explode(_req: Any) -> Any:
        raise RuntimeError("boom")

    stub.answers["RecordProviderNotification"] = explode
    r = await notify(client, urlencode(genuine_fields()).encode())
    assert (r.status_code, r.text) == (503, "fail")


async def test_r_pay_7_before_start_a_notification_is_fail_not_success() -> None:
    app = create_app(Settings(token_secret=SECRET))  # lifespan not run: no backends
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
        r = await notify(c, urlencode(genuine_fields()).encode())
    assert (r.status_code, r.text) == (503, "fail")
