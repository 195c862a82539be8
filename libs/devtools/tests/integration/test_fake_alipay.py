"""AlipayClient against the fake gateway on a free loopback port: the real protocol, both ways."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cqcommon.alipay import (
    BILL_NOT_EXIST,
    NOTIFY_ACK,
    SHANGHAI,
    TRADE_STATUS_ERROR,
    AlipayClient,
    AlipayError,
    AlipaySignatureError,
    AlipayTransportError,
    CertifyOutcome,
    generate_keypair_pem,
    parse_trade_bill,
    parse_trade_notification,
    summarize_trade_bill,
    verify_notification,
)
from cqcommon.settings import Settings
from cqdev.fake_alipay import (
    BILL_DOWNLOAD,
    BILL_URL_METHOD,
    FakeAlipay,
    FakeTradeClosedError,
    NotifyAttempt,
    ensure_sandbox_keys,
    sandbox_env,
)
from cqdev.stack import free_port

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


# -- close, time_expire, seller -------------------------------------------------------------
class _Clock:
    """A settable clock for a fake of its own (time_expire without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.now(SHANGHAI).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


async def test_trade_close_by_state(fake: FakeAlipay, client: AlipayClient) -> None:
    unpaid, paid = _no(), _no()
    await client.trade_create(unpaid, 100, "罚款", BUYER)
    closed = await client.trade_close(unpaid)
    assert closed.out_trade_no == unpaid and closed.trade_no
    assert (await client.trade_query(unpaid)).trade_status == "TRADE_CLOSED"
    with pytest.raises(FakeTradeClosedError):  # the cashier refuses a closed trade
        fake.pay(unpaid)
    with pytest.raises(AlipayError) as info:  # closed already: Alipay says "status error"
        await client.trade_close(unpaid)
    assert info.value.sub_code == TRADE_STATUS_ERROR

    await client.trade_create(paid, 100, "罚款", BUYER)
    fake.pay(paid)
    with pytest.raises(AlipayError) as info:
        await client.trade_close(paid)
    assert (info.value.code, info.value.sub_code) == ("40004", TRADE_STATUS_ERROR)
    assert (await client.trade_query(paid)).trade_status == "TRADE_SUCCESS"

    with pytest.raises(AlipayError) as info:
        await client.trade_close(_no())
    assert info.value.not_found


async def test_time_expire_closes_the_unpaid_trade(http: httpx.AsyncClient) -> None:
    clock = _Clock()
    with FakeAlipay(clock=clock) as own:
        client = own.make_client(http)
        first, second = _no(), _no()
        expire = clock.now + timedelta(minutes=10)
        # Any zone in, Shanghai wall time on the wire.
        await client.trade_create(first, 100, "罚款", BUYER, time_expire=expire.astimezone(UTC))
        assert own.calls_of("alipay.trade.create")[-1].biz["time_expire"] == expire.strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        await client.trade_create(second, 100, "罚款", BUYER, time_expire=expire)
        own.pay(second)  # paid in time: expiry changes nothing
        clock.now = expire
        with pytest.raises(FakeTradeClosedError):
            own.pay(first)
        assert (await client.trade_query(first)).trade_status == "TRADE_CLOSED"
        assert (await client.trade_query(second)).trade_status == "TRADE_SUCCESS"
        with pytest.raises(AlipayError) as info:  # expired in the past: refused
            await client.trade_create(_no(), 100, "罚款", BUYER, time_expire=clock.now)
        assert info.value.sub_code == "ACQ.INVALID_PARAMETER"
        with pytest.raises(ValueError):  # a naive datetime never leaves the client
            await client.trade_create(_no(), 100, "罚款", BUYER, time_expire=datetime(2030, 1, 1))


async def test_seller_id_must_be_the_apps_merchant(fake: FakeAlipay, client: AlipayClient) -> None:
    out_trade_no = _no()
    await client.trade_create(out_trade_no, 100, "罚款", BUYER, seller_id=fake.seller_id)
    assert fake.calls_of("alipay.trade.create")[-1].biz["seller_id"] == fake.seller_id
    with pytest.raises(AlipayError) as info:
        await client.trade_create(_no(), 100, "罚款", BUYER, seller_id="2088000000000042")
    assert info.value.sub_code == "ACQ.PARTNER_ERROR"


async def test_injections_work_for_the_new_methods(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    client = fake.make_client(http, timeout_s=0.3)
    out_trade_no = _no()
    await client.trade_create(out_trade_no, 100, "罚款", BUYER)
    fake.fail_next("alipay.trade.close")
    with pytest.raises(AlipayError) as info:
        await client.trade_close(out_trade_no)
    assert info.value.outcome_unknown
    assert fake.trade(out_trade_no).status == "WAIT_BUYER_PAY"  # type: ignore[union-attr]
    fake.delay_next("alipay.trade.close", 3.0)  # takes effect, answers late
    with pytest.raises(AlipayTransportError) as timeout:
        await client.trade_close(out_trade_no)
    assert timeout.value.timed_out
    assert fake.trade(out_trade_no).status == "TRADE_CLOSED"  # type: ignore[union-attr]

    today = datetime.now(SHANGHAI).date()
    fake.delay_next(BILL_URL_METHOD, 3.0)
    with pytest.raises(AlipayTransportError):
        await client.bill_download_url(today)
    fake.fail_next(BILL_DOWNLOAD)
    with pytest.raises(AlipayTransportError):
        await client.trade_bill(today)
    fake.delay_next(BILL_DOWNLOAD, 3.0)  # the download keeps the client's deadline too
    with pytest.raises(AlipayTransportError) as timeout:
        await client.trade_bill(today)
    assert timeout.value.timed_out


# -- the trade bill -------------------------------------------------------------------------
async def test_trade_bill_is_a_zip_of_gbk_csv_with_payments_and_refunds(
    fake: FakeAlipay, client: AlipayClient, http: httpx.AsyncClient
) -> None:
    paid, refunded, unpaid = _no(), _no(), _no()
    for no, fen in ((paid, 3000), (refunded, 5000), (unpaid, 700)):
        await client.trade_create(no, fen, "罚款,渝A12345", BUYER)  # a comma in a cell
    fake.pay(paid)
    fake.pay(refunded)
    await client.trade_refund(refunded, 1200, "R1")
    await client.trade_refund(refunded, 800, "R2")
    today = datetime.now(SHANGHAI).date()

    url = await client.bill_download_url(today)
    assert "token=" in url and "bizDates=" + today.strftime("%Y%m%d") in url
    raw = await client.download_bill(url)  # an unsigned GET
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = archive.namelist()
        detail = next(n for n in names if n.endswith("业务明细.csv"))
        text = archive.read(detail).decode("gbk")
    assert len(names) == 2 and any("汇总" in n for n in names)
    assert text.startswith("#支付宝业务明细查询") and "支付宝交易号,商户订单号,业务类型" in text

    rows = [r for r in parse_trade_bill(raw) if r.out_trade_no in (paid, refunded, unpaid)]
    assert sorted((r.out_trade_no, r.kind, r.amount_fen, r.out_request_no) for r in rows) == sorted(
        [
            (paid, "交易", 3000, None),
            (refunded, "交易", 5000, None),
            (refunded, "退款", -1200, "R1"),
            (refunded, "退款", -800, "R2"),
        ]
    )
    lines = {
        line.out_trade_no: line
        for line in summarize_trade_bill(await client.trade_bill(today))
        if line.out_trade_no in (paid, refunded)
    }
    assert (lines[paid].total_amount_fen, lines[paid].refunded_fen) == (3000, 0)
    assert (lines[refunded].total_amount_fen, lines[refunded].refunded_fen) == (5000, 2000)
    expected = {s.out_trade_no: s for s in fake.statement(today)}
    assert lines[refunded].paid_at == expected[refunded].paid_at.replace(microsecond=0)

    # The URL is the credential, and only for a while; a future day has no bill.
    forged = url.split("token=")[0] + "token=" + "0" * 32
    assert (await http.get(forged)).status_code == 403
    with pytest.raises(AlipayError) as info:
        await client.bill_download_url(today + timedelta(days=1))
    assert info.value.sub_code == BILL_NOT_EXIST


async def test_bill_url_expires(http: httpx.AsyncClient) -> None:
    with FakeAlipay(bill_url_ttl_s=0.05) as own:
        client = own.make_client(http)
        url = await client.bill_download_url(datetime.now(SHANGHAI).date())
        await asyncio.sleep(0.1)
        with pytest.raises(AlipayTransportError, match="HTTP 403"):
            await client.download_bill(url)


# -- notifications: retries, replays, order -------------------------------------------------
class _ScriptedReceiver:
    """A notify endpoint that answers from a script ("fail", "fail", "success", ...)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.received: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
                receiver.received.append(form)
                index = len(receiver.received) - 1
                body = receiver.answers[min(index, len(receiver.answers) - 1)].encode()
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


async def _settled(fake: FakeAlipay, out_trade_no: str, posts: int) -> list[NotifyAttempt]:
    for _ in range(200):
        attempts = fake.deliveries_of(out_trade_no)
        if len(attempts) >= posts:
            await asyncio.sleep(0.2)  # and no further post comes
            return fake.deliveries_of(out_trade_no)
        await asyncio.sleep(0.05)
    return fake.deliveries_of(out_trade_no)


async def test_sandbox_pay_route_retries_until_success(http: httpx.AsyncClient) -> None:
    receiver = _ScriptedReceiver(["fail", "fail", NOTIFY_ACK])
    try:
        with FakeAlipay(notify_schedule_s=(0, 0.05, 0.05, 0.05, 0.05)) as own:
            client = own.make_client(http)
            out_trade_no = _no()
            trade_no = await client.trade_create(out_trade_no, 20000, "罚款", BUYER, receiver.url)
            r = await http.post(f"{own.url}/sandbox/alipay/trades/{trade_no}/pay")
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["out_trade_no"], body["trade_status"]) == (out_trade_no, "TRADE_SUCCESS")
            assert body["first_attempt"]["answer"] == "fail"
            assert not body["first_attempt"]["acknowledged"]

            attempts = await _settled(own, out_trade_no, 3)
            assert len(receiver.received) == 3  # exactly three posts: fail, fail, success
            assert [a.answer for a in attempts] == ["fail", "fail", NOTIFY_ACK]
            assert [a.attempt for a in attempts] == [1, 2, 3]
            # every retry is the same signed notice
            assert len({form["notify_id"] for form in receiver.received}) == 1
            assert all(
                verify_notification(form, own.alipay_public_key_pem, own.app_id)
                for form in receiver.received
            )
            assert receiver.received[0]["trade_status"] == "TRADE_SUCCESS"
            assert (await client.trade_query(out_trade_no)).trade_status == "TRADE_SUCCESS"
    finally:
        receiver.close()


async def test_delivery_gives_up_after_the_schedule(fake: FakeAlipay, client: AlipayClient) -> None:
    receiver = _ScriptedReceiver(["fail"])
    try:
        out_trade_no = _no()
        await client.trade_create(out_trade_no, 100, "罚款", BUYER, receiver.url)
        fake.pay(out_trade_no)
        delivery = await fake.deliver_notification(out_trade_no, schedule_s=(0, 0.01, 0.01))
        assert not delivery.acknowledged and len(delivery.attempts) == 3
        assert len(receiver.received) == 3
        # an answer that is not exactly "success" is a failure, like Alipay reads it
        receiver.answers = ["success\n"]
        assert not (await fake.deliver_notification(out_trade_no, schedule_s=(0,))).acknowledged
    finally:
        receiver.close()


async def test_delivery_counts_no_answer_as_a_failed_attempt(
    fake: FakeAlipay, client: AlipayClient
) -> None:
    out_trade_no = _no()
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/notify"
    await client.trade_create(out_trade_no, 100, "罚款", BUYER, dead)
    fake.pay(out_trade_no)
    delivery = await fake.deliver_notification(out_trade_no, schedule_s=(0, 0.01))
    assert [a.status_code for a in delivery.attempts] == [None, None]
    assert all(a.error for a in delivery.attempts)


async def test_sandbox_pay_route_unknown_closed_and_health(
    fake: FakeAlipay, client: AlipayClient, http: httpx.AsyncClient
) -> None:
    assert (await http.get(f"{fake.url}/_fake/health")).text == "ok"
    r = await http.post(f"{fake.url}/sandbox/alipay/trades/{'9' * 28}/pay")
    assert r.status_code == 404 and r.json()["error"] == "ACQ.TRADE_NOT_EXIST"
    out_trade_no = _no()
    trade_no = await client.trade_create(out_trade_no, 100, "罚款", BUYER)
    await client.trade_close(out_trade_no)
    r = await http.post(f"{fake.url}/sandbox/alipay/trades/{trade_no}/pay")
    assert r.status_code == 409 and r.json()["error"] == "ACQ.TRADE_HAS_CLOSE"
    assert fake.trade(out_trade_no).paid_at is None  # type: ignore[union-attr]
    # no notify_url: paid, nothing to post
    other = _no()
    other_trade_no = await client.trade_create(other, 100, "罚款", BUYER)
    r = await http.post(f"{fake.url}/sandbox/alipay/trades/{other_trade_no}/pay")
    assert r.status_code == 200 and r.json()["first_attempt"] is None
    assert fake.trade(other).status == "TRADE_SUCCESS"  # type: ignore[union-attr]


async def test_replay_and_out_of_order_notifications(
    fake: FakeAlipay, client: AlipayClient, receiver: _Receiver
) -> None:
    out_trade_no = _no()
    await client.trade_create(out_trade_no, 100, "罚款", BUYER, receiver.url)
    fake.pay(out_trade_no)
    params = fake.notification_params(out_trade_no)
    answers = await fake.replay_notification(params, receiver.url, times=15, concurrency=10)
    assert answers == [NOTIFY_ACK] * 15
    replayed = receiver.received[-15:]
    assert all(form == params for form in replayed)  # the very same signed notice

    # A stale TRADE_CLOSED arriving after the success: genuinely signed, another state.
    late = fake.notification_params(out_trade_no, trade_status="TRADE_CLOSED")
    assert late["trade_status"] == "TRADE_CLOSED" and late["gmt_close"]
    assert late["gmt_payment"] == params["gmt_payment"]
    assert verify_notification(late, fake.alipay_public_key_pem, fake.app_id)
    assert await fake.send_notification(out_trade_no, trade_status="TRADE_CLOSED") == NOTIFY_ACK

    # Refunds show in the next notice; forged and re-signed ones are told apart.
    await client.trade_refund(out_trade_no, 40, "R1")
    refunded = fake.notification_params(out_trade_no)
    assert (refunded["refund_fee"], refunded["out_biz_no"]) == ("0.40", "R1")
    resigned = fake.sign_notification(dict(refunded, total_amount="0.01"))
    assert verify_notification(resigned, fake.alipay_public_key_pem, fake.app_id)
    forged = fake.sign_notification(refunded, forged=True)
    assert not verify_notification(forged, fake.alipay_public_key_pem, fake.app_id)

    unpaid = _no()
    await client.trade_create(unpaid, 100, "罚款", BUYER, receiver.url)
    await client.trade_close(unpaid)  # closed unpaid: a TRADE_CLOSED notice has no payment
    closed = fake.notification_params(unpaid)
    assert closed["trade_status"] == "TRADE_CLOSED" and "gmt_payment" not in closed


# -- the sandbox server process -------------------------------------------------------------
def test_sandbox_keys_are_made_once_and_private(tmp_path: Path) -> None:
    keys_dir = tmp_path / "alipay"
    first = ensure_sandbox_keys(keys_dir)
    again = ensure_sandbox_keys(keys_dir)
    assert first == again
    for path in keys_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    env = sandbox_env("http://127.0.0.1:8010/gateway.do", first, notify_url="http://gw/notify")
    assert env["ALIPAY_PUBLIC_KEY_PEM"] == first.alipay_public_key_pem
    assert env["ALIPAY_APP_PRIVATE_KEY_PEM"] == first.app_private_key_pem
    assert env["ALIPAY_NOTIFY_URL"] == "http://gw/notify"
    assert set(env) == {
        "ALIPAY_GATEWAY_URL",
        "ALIPAY_APP_ID",
        "ALIPAY_SELLER_ID",
        "ALIPAY_APP_PRIVATE_KEY_PEM",
        "ALIPAY_PUBLIC_KEY_PEM",
        "ALIPAY_NOTIFY_URL",
    }


def test_cli_serves_with_the_sandbox_keys_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env_file = tmp_path / "alipay.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cqdev", "fake-alipay", "--port", str(port),
         "--keys-dir", str(tmp_path / "keys"), "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/_fake/health", timeout=1).text
            except httpx.HTTPError:
                healthy = ""
            if healthy == "ok" and env_file.exists():  # the file follows right after
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
            time.sleep(0.1)
        keys = ensure_sandbox_keys(tmp_path / "keys")  # the ones the server loaded
        assert env_file.stat().st_mode & 0o777 == 0o600
        exported = env_file.read_text()
        assert f"ALIPAY_GATEWAY_URL=http://127.0.0.1:{port}/gateway.do" in exported
        assert "ALIPAY_PUBLIC_KEY_PEM='" + keys.alipay_public_key_pem in exported
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "/sandbox/alipay/trades/<trade_no>/pay" in out
    assert "PRIVATE KEY" not in out  # keys go to the env file, never to the log


# -- the pytest plugin ----------------------------------------------------------------------
@pytest.mark.integration
async def test_session_settings_point_at_the_session_fake(
    test_settings: Settings,
    test_env: dict[str, str],
    fake_alipay: FakeAlipay,
    http: httpx.AsyncClient,
) -> None:
    """The in-process clusters' services (built from ``test_settings``) talk to the fake."""
    assert test_settings.alipay_gateway_url == fake_alipay.gateway_url
    assert test_settings.alipay_seller_id == fake_alipay.seller_id
    assert test_settings.alipay_notify_url == "http://gateway.test/api/v1/alipay/notify"
    assert test_env["ALIPAY_PUBLIC_KEY_PEM"] == fake_alipay.alipay_public_key_pem
    client = AlipayClient(
        gateway_url=test_settings.alipay_gateway_url,
        app_id=test_settings.alipay_app_id,
        app_private_key_pem=test_settings.alipay_app_private_key_pem,
        alipay_public_key_pem=test_settings.alipay_public_key_pem,
        http=http,
        timeout_s=test_settings.alipay_timeout_s,
    )
    out_trade_no = _no()
    trade_no = await client.trade_create(
        out_trade_no, 100, "罚款", BUYER, test_settings.alipay_notify_url
    )
    assert fake_alipay.trade(out_trade_no).trade_no == trade_no  # type: ignore[union-attr]
