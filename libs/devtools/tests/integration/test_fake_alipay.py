"""AlipayClient against the fake gateway on a free loopback port: the real protocol, both ways."""

from __future__ import annotations

import socket
import threading
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cqcommon.alipay import (
    NOTIFY_ACK,
    SHANGHAI,
    AlipayClient,
    AlipayError,
    AlipaySignatureError,
    AlipayTransportError,
    CertifyOutcome,
    generate_keypair_pem,
    parse_trade_notification,
    verify_notification,
)
from cqdev.fake_alipay import FakeAlipay

BUYER = "2088000000000001"


def _no() -> str:
    return "T" + uuid.uuid4().hex[:20]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAlipay]:
    with FakeAlipay() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(fake: FakeAlipay, http: httpx.AsyncClient) -> AlipayClient:
    return fake.make_client(http, timeout_s=5.0)


class _Receiver:
    """A notify endpoint over real HTTP that answers as our gateway must (API.md)."""

    def __init__(self, alipay_public_key_pem: str, app_id: str) -> None:
        self.received: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                ctype = self.headers.get("Content-Type", "")
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
                receiver.received.append(form)
                ok = ctype.startswith("application/x-www-form-urlencoded") and verify_notification(
                    form, alipay_public_key_pem, app_id
                )
                body = (NOTIFY_ACK if ok else "fail").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/alipay/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(fake: FakeAlipay) -> Iterator[_Receiver]:
    r = _Receiver(fake.alipay_public_key_pem, fake.app_id)
    yield r
    r.close()


# -- lifecycle ------------------------------------------------------------------------------
def test_starts_on_a_free_port_and_stops_cleanly() -> None:
    first, second = FakeAlipay().start(), FakeAlipay().start()
    try:
        assert first.port and second.port and first.port != second.port
        assert first.gateway_url.startswith("http://127.0.0.1:")
    finally:
        first.stop()
        second.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", first.port or 0), timeout=1).close()
    never_started = FakeAlipay(app_public_key_pem=first.app_public_key_pem)
    with pytest.raises(RuntimeError):
        _ = never_started.url


# -- oauth ----------------------------------------------------------------------------------
async def test_oauth_round_trip(fake: FakeAlipay, client: AlipayClient) -> None:
    fake.register_auth_code("code-123", "2088000000000007")
    token = await client.oauth_token("code-123")
    assert token.user_id == "2088000000000007"
    assert token.access_token and token.expires_in > 0
    call = fake.calls_of("alipay.system.oauth.token")[-1]
    assert call.params["grant_type"] == "authorization_code" and call.params["code"] == "code-123"

    with pytest.raises(AlipayError) as info:  # auth codes are single use
        await client.oauth_token("code-123")
    assert info.value.sub_code == "isv.code-invalid"

    sandbox = await client.oauth_token("sandbox:2088000000000003")
    assert sandbox.user_id == "2088000000000003"


# -- request and response signatures --------------------------------------------------------
async def test_request_signed_with_the_wrong_app_key_is_rejected(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    wrong_private, _ = generate_keypair_pem()
    client = AlipayClient(
        gateway_url=fake.gateway_url,
        app_id=fake.app_id,
        app_private_key_pem=wrong_private,
        alipay_public_key_pem=fake.alipay_public_key_pem,
        http=http,
    )
    before = len(fake.calls)
    with pytest.raises(AlipayError) as info:
        await client.oauth_token("sandbox:2088000000000001")
    assert (info.value.code, info.value.sub_code) == ("40002", "isv.invalid-signature")
    assert info.value.verified  # the rejection itself is signed by the fake's Alipay key
    assert len(fake.calls) == before  # nothing was accepted


async def test_wrong_app_id_is_rejected(fake: FakeAlipay, http: httpx.AsyncClient) -> None:
    assert fake.app_private_key_pem is not None
    client = AlipayClient(
        gateway_url=fake.gateway_url,
        app_id="2021999999999999",
        app_private_key_pem=fake.app_private_key_pem,
        alipay_public_key_pem=fake.alipay_public_key_pem,
        http=http,
    )
    with pytest.raises(AlipayError) as info:
        await client.trade_query("whatever")
    assert info.value.sub_code == "isv.invalid-app-id"


async def test_response_from_someone_else_fails_verification(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    assert fake.app_private_key_pem is not None
    _, not_alipays_public = generate_keypair_pem()
    client = AlipayClient(
        gateway_url=fake.gateway_url,
        app_id=fake.app_id,
        app_private_key_pem=fake.app_private_key_pem,
        alipay_public_key_pem=not_alipays_public,
        http=http,
    )
    with pytest.raises(AlipaySignatureError):
        await client.oauth_token("sandbox:2088000000000001")


# -- trades ---------------------------------------------------------------------------------
async def test_trade_create_pay_query_refund(
    fake: FakeAlipay, client: AlipayClient, receiver: _Receiver
) -> None:
    out_trade_no = _no()
    trade_no = await client.trade_create(out_trade_no, 1250, "交通违法罚款", BUYER, receiver.url)
    call = fake.calls_of("alipay.trade.create")[-1]
    assert call.biz["total_amount"] == "12.50" and call.biz["product_code"] == "JSAPI_PAY"
    assert call.params["notify_url"] == receiver.url

    status = await client.trade_query(out_trade_no)
    assert (status.trade_no, status.trade_status, status.is_paid) == (
        trade_no,
        "WAIT_BUYER_PAY",
        False,
    )

    # Re-creating the same unpaid trade returns the same trade_no; another amount is refused.
    assert (
        await client.trade_create(out_trade_no, 1250, "交通违法罚款", BUYER, receiver.url)
        == trade_no
    )
    with pytest.raises(AlipayError) as info:
        await client.trade_create(out_trade_no, 1300, "交通违法罚款", BUYER, receiver.url)
    assert info.value.sub_code == "ACQ.CONTEXT_INCONSISTENT"

    fake.pay(out_trade_no)
    status = await client.trade_query(out_trade_no)
    assert status.trade_status == "TRADE_SUCCESS" and status.is_paid
    assert status.total_amount_fen == 1250 and status.buyer_user_id == BUYER
    assert status.paid_at is not None

    refund = await client.trade_refund(out_trade_no, 500, "R1")
    assert (refund.refund_fee_fen, refund.fund_change) == (500, True)
    again = await client.trade_refund(out_trade_no, 500, "R1")  # a retry moves no money
    assert (again.refund_fee_fen, again.fund_change) == (500, False)
    with pytest.raises(AlipayError) as info:
        await client.trade_refund(out_trade_no, 800, "R2")  # 500 + 800 > 1250
    assert info.value.sub_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    full = await client.trade_refund(out_trade_no, 750, "R2")
    assert full.refund_fee_fen == 1250
    assert (await client.trade_query(out_trade_no)).trade_status == "TRADE_CLOSED"


async def test_query_of_an_unknown_trade_is_not_found(client: AlipayClient) -> None:
    with pytest.raises(AlipayError) as info:
        await client.trade_query(_no())
    assert info.value.not_found and info.value.code == "40004"


async def test_paid_but_the_create_answer_timed_out(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    """R-PAY-4 shape: the call took effect at Alipay, our side saw a timeout; query resolves it."""
    impatient = fake.make_client(http, timeout_s=0.3)
    out_trade_no = _no()
    fake.delay_next("alipay.trade.create", 3.0)
    with pytest.raises(AlipayTransportError) as info:
        await impatient.trade_create(out_trade_no, 20000, "罚款", BUYER)
    assert info.value.timed_out
    fake.pay(out_trade_no)
    status = await impatient.trade_query(out_trade_no)
    assert status.trade_status == "TRADE_SUCCESS" and status.total_amount_fen == 20000


async def test_injected_system_busy_is_outcome_unknown(
    fake: FakeAlipay, client: AlipayClient
) -> None:
    fake.fail_next("alipay.trade.refund")
    with pytest.raises(AlipayError) as info:
        await client.trade_refund(_no(), 100, "R1")
    assert info.value.outcome_unknown and info.value.code == "20000"


# -- notifications --------------------------------------------------------------------------
async def test_genuine_notification_is_accepted_and_forged_ones_rejected(
    fake: FakeAlipay, client: AlipayClient, receiver: _Receiver
) -> None:
    out_trade_no = _no()
    trade_no = await client.trade_create(out_trade_no, 20000, "罚款", BUYER, receiver.url)
    with pytest.raises(ValueError):  # not paid yet: Alipay would not notify
        fake.notification_params(out_trade_no)
    fake.pay(out_trade_no)

    assert await fake.send_notification(out_trade_no) == NOTIFY_ACK
    genuine = receiver.received[-1]
    for field in ("notify_time", "notify_type", "notify_id", "app_id", "charset", "version",
                  "sign_type", "sign", "trade_no", "out_trade_no", "trade_status",
                  "total_amount", "buyer_id", "gmt_payment"):  # fmt: skip
        assert genuine.get(field), field
    parsed = parse_trade_notification(genuine)
    assert (parsed.trade_no, parsed.total_amount_fen, parsed.trade_status) == (
        trade_no,
        20000,
        "TRADE_SUCCESS",
    )

    assert await fake.send_notification(out_trade_no, forged=True) == "fail"
    assert (
        await fake.send_notification(out_trade_no, overrides={"app_id": "2021000000000001"})
        == "fail"
    )
    tampered = dict(genuine, total_amount="0.01")
    assert not verify_notification(tampered, fake.alipay_public_key_pem, fake.app_id)
    # A genuinely signed notification for another amount passes the signature check:
    # the amount check against our own record is the payment service's job (R-PAY-7).
    other = fake.notification_params(out_trade_no, overrides={"total_amount": "0.01"})
    assert verify_notification(other, fake.alipay_public_key_pem, fake.app_id)
    assert parse_trade_notification(other).total_amount_fen == 1


async def test_notification_through_an_injected_client(
    fake: FakeAlipay, client: AlipayClient
) -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.content.decode()))
        seen.append(form)
        ok = verify_notification(form, fake.alipay_public_key_pem, fake.app_id)
        return httpx.Response(200, text=NOTIFY_ACK if ok else "fail")

    out_trade_no = _no()
    await client.trade_create(out_trade_no, 100, "罚款", BUYER, "http://gateway.test/notify")
    fake.pay(out_trade_no)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as in_process:
        assert await fake.send_notification(out_trade_no, http=in_process) == NOTIFY_ACK
    assert seen[0]["out_trade_no"] == out_trade_no


# -- face verification ----------------------------------------------------------------------
async def test_certify_initialize_url_and_query(
    fake: FakeAlipay, client: AlipayClient, http: httpx.AsyncClient
) -> None:
    certify_id = await client.certify_initialize(
        "ADJ" + uuid.uuid4().hex[:20], "张伟", "500101199001011234", "FACE"
    )
    cert = fake.certification(certify_id)
    assert cert is not None and (cert.cert_name, cert.cert_no) == ("张伟", "500101199001011234")
    assert await client.certify_query(certify_id) is CertifyOutcome.PENDING

    url = client.certify_url(certify_id)
    page = await http.get(url)
    assert page.status_code == 200 and certify_id in page.text
    forged_url = url.replace(certify_id, "0" * 32)  # the signature covers biz_content
    assert "isv.invalid-signature" in (await http.get(forged_url)).text

    fake.set_certify_result(certify_id, True)
    assert await client.certify_query(certify_id) is CertifyOutcome.PASSED
    fake.set_certify_result(certify_id, False)
    assert await client.certify_query(certify_id) is CertifyOutcome.FAILED
    with pytest.raises(AlipayError):
        await client.certify_query("f" * 32)


# -- statement ------------------------------------------------------------------------------
async def test_statement_lists_the_days_paid_trades(fake: FakeAlipay, client: AlipayClient) -> None:
    paid, unpaid = _no(), _no()
    await client.trade_create(paid, 3000, "罚款", BUYER)
    await client.trade_create(unpaid, 4000, "罚款", BUYER)
    at = datetime(2030, 1, 2, 23, 30, tzinfo=SHANGHAI)
    fake.pay(paid, at=at)
    lines = fake.statement(at.date())
    assert [(line.out_trade_no, line.total_amount_fen) for line in lines] == [(paid, 3000)]
    assert fake.statement(datetime(2030, 1, 3).date()) == []
