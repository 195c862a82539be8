"""``AlipayTradeProvider`` against a real fake Alipay server (``cqdev.fake_alipay``) over HTTP:
the port's promises (R-PAY-3/4/5/7, R-JOB-2) hold on the wire protocol, signatures included.

Each test talks to a module-wide fake on a free loopback port through its own httpx client;
a test that needs a clock or a schedule of its own starts its own fake.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from cqcommon.alipay import SHANGHAI, AlipayClient, generate_keypair_pem
from cqcommon.settings import Settings
from cqdev.fake_alipay import FakeAlipay, FakeTradeClosedError
from cqpayment.adapters.alipay_trades import AlipayTradeProvider
from cqpayment.adapters.providers import ProviderConfigError, trade_provider_for
from cqpayment.domain.provider import (
    NotificationRejectedError,
    ProviderRefusedError,
    ProviderUnavailableError,
    TradeAlreadyPaidError,
    TradeState,
)
from cqpayment.ports import TradeProvider

pytestmark = pytest.mark.integration

BUYER = "2088000000000001"
NOTIFY_URL = "http://gateway.test/api/v1/alipay/notify"


def _no() -> str:
    return "P" + uuid.uuid4().hex[:24]


def _in(minutes: int = 15) -> datetime:
    return datetime.now(SHANGHAI) + timedelta(minutes=minutes)


def _settings(fake: FakeAlipay, **overrides: object) -> Settings:
    assert fake.app_private_key_pem is not None
    values: dict[str, object] = {
        "alipay_gateway_url": fake.gateway_url,
        "alipay_app_id": fake.app_id,
        "alipay_seller_id": fake.seller_id,
        "alipay_app_private_key_pem": fake.app_private_key_pem,
        "alipay_public_key_pem": fake.alipay_public_key_pem,
        "alipay_notify_url": NOTIFY_URL,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAlipay]:
    with FakeAlipay() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def provider(fake: FakeAlipay, http: httpx.AsyncClient) -> TradeProvider:
    # Built the way the payment service builds it (one client, ALIPAY_TIMEOUT_S).
    return trade_provider_for(_settings(fake), http)


def test_the_adapter_is_a_trade_provider(fake: FakeAlipay, http: httpx.AsyncClient) -> None:
    _: TradeProvider = AlipayTradeProvider(fake.make_client(http))  # mypy checks the port
    assert isinstance(trade_provider_for(_settings(fake), http), AlipayTradeProvider)


def test_missing_or_broken_keys_fail_at_start(fake: FakeAlipay, http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderConfigError, match="ALIPAY_APP_PRIVATE_KEY_PEM"):
        trade_provider_for(_settings(fake, alipay_app_private_key_pem=""), http)
    with pytest.raises(ProviderConfigError) as info:
        trade_provider_for(_settings(fake, alipay_public_key_pem="not a key"), http)
    assert "not a key" not in str(info.value)


# -- create, query, close -------------------------------------------------------------------
async def test_create_query_close_round_trip(fake: FakeAlipay, provider: TradeProvider) -> None:
    out_trade_no = _no()
    assert await provider.query_trade(out_trade_no) is None  # never created
    trade_no = await provider.create_trade(
        out_trade_no=out_trade_no,
        amount_fen=20_050,
        subject="决定书 5001011234567890",
        buyer_id=BUYER,
        expires_at=_in(),
    )
    call = fake.calls_of("alipay.trade.create")[-1]
    assert call.params["notify_url"] == NOTIFY_URL  # ALIPAY_NOTIFY_URL, never a request's
    assert call.biz["seller_id"] == fake.seller_id and call.biz["total_amount"] == "200.50"
    assert call.biz["subject"].startswith("重庆交警罚款 决定书")

    trade = await provider.query_trade(out_trade_no)
    assert trade is not None
    assert (trade.trade_no, trade.state, trade.total_amount_fen, trade.paid_at) == (
        trade_no,
        TradeState.WAIT_BUYER_PAY,
        20_050,
        None,
    )
    await provider.close_trade(out_trade_no)
    closed = await provider.query_trade(out_trade_no)
    assert closed is not None and closed.state is TradeState.TRADE_CLOSED
    await provider.close_trade(out_trade_no)  # closing again is fine
    with pytest.raises(FakeTradeClosedError):  # and the buyer can no longer pay it
        fake.pay(out_trade_no)


async def test_r_pay_3_the_same_order_again_finds_the_same_trade(provider: TradeProvider) -> None:
    out_trade_no, expires = _no(), _in()
    first = await provider.create_trade(
        out_trade_no=out_trade_no,
        amount_fen=5000,
        subject="罚款",
        buyer_id=BUYER,
        expires_at=expires,
    )
    again = await provider.create_trade(
        out_trade_no=out_trade_no,
        amount_fen=5000,
        subject="罚款",
        buyer_id=BUYER,
        expires_at=expires,
    )
    assert again == first
    with pytest.raises(ProviderRefusedError) as info:  # another amount is another order
        await provider.create_trade(
            out_trade_no=out_trade_no,
            amount_fen=5001,
            subject="罚款",
            buyer_id=BUYER,
            expires_at=expires,
        )
    assert info.value.code == "ACQ.CONTEXT_INCONSISTENT"


async def test_close_of_an_unknown_trade_counts_as_closed(provider: TradeProvider) -> None:
    await provider.close_trade(_no())


async def test_close_of_a_paid_trade_says_it_was_paid(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    paid, refunded = _no(), _no()
    for no in (paid, refunded):
        await provider.create_trade(
            out_trade_no=no, amount_fen=300, subject="罚款", buyer_id=BUYER, expires_at=_in()
        )
        fake.pay(no)
    with pytest.raises(TradeAlreadyPaidError):
        await provider.close_trade(paid)
    # Fully refunded, the trade is TRADE_CLOSED at Alipay, but it was paid all the same.
    await provider.refund(out_trade_no=refunded, amount_fen=300, out_request_no="R1", reason="重复")
    state = await provider.query_trade(refunded)
    assert state is not None and state.state is TradeState.TRADE_CLOSED
    with pytest.raises(TradeAlreadyPaidError):
        await provider.close_trade(refunded)


async def test_time_expire_is_honoured(http: httpx.AsyncClient) -> None:
    now = [datetime.now(SHANGHAI).replace(microsecond=0)]
    with FakeAlipay(clock=lambda: now[0]) as own:
        provider = AlipayTradeProvider(own.make_client(http))
        out_trade_no = _no()
        midnight = (now[0] + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        await provider.create_trade(
            out_trade_no=out_trade_no,
            amount_fen=100,
            subject="罚款",
            buyer_id=BUYER,
            expires_at=midnight,
        )
        assert own.calls_of("alipay.trade.create")[-1].biz["time_expire"] == (
            midnight.strftime("%Y-%m-%d 00:00:00")
        )
        now[0] = midnight  # the day has turned: the old amount can no longer be paid
        with pytest.raises(FakeTradeClosedError):
            own.pay(out_trade_no)
        trade = await provider.query_trade(out_trade_no)
        assert trade is not None and trade.state is TradeState.TRADE_CLOSED
        await provider.close_trade(out_trade_no)


async def test_a_business_refusal_is_refused(fake: FakeAlipay, http: httpx.AsyncClient) -> None:
    foreign_seller = AlipayTradeProvider(fake.make_client(http), seller_id="2088000000000042")
    with pytest.raises(ProviderRefusedError) as info:
        await foreign_seller.create_trade(
            out_trade_no=_no(), amount_fen=100, subject="罚款", buyer_id=BUYER, expires_at=_in()
        )
    assert info.value.code == "ACQ.PARTNER_ERROR"


# -- R-PAY-4: no trustworthy answer is never a success nor a refusal ------------------------
async def test_r_pay_4_system_busy_is_unavailable(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    out_trade_no = _no()
    fake.fail_next("alipay.trade.create")
    with pytest.raises(ProviderUnavailableError):
        await provider.create_trade(
            out_trade_no=out_trade_no,
            amount_fen=100,
            subject="罚款",
            buyer_id=BUYER,
            expires_at=_in(),
        )
    fake.fail_next("alipay.trade.close", code="40004", sub_code="ACQ.SYSTEM_ERROR", msg="x")
    with pytest.raises(ProviderUnavailableError):
        await provider.close_trade(out_trade_no)


async def test_r_pay_4_the_timeout_setting_bounds_a_call(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    impatient = trade_provider_for(_settings(fake, alipay_timeout_s=0.3), http)
    out_trade_no = _no()
    fake.delay_next("alipay.trade.create", 5.0)  # takes effect, answers after the deadline
    with pytest.raises(ProviderUnavailableError, match="timed out"):
        await impatient.create_trade(
            out_trade_no=out_trade_no,
            amount_fen=100,
            subject="罚款",
            buyer_id=BUYER,
            expires_at=_in(),
        )
    fake.pay(out_trade_no)  # the buyer paid meanwhile: only a query can tell
    trade = await impatient.query_trade(out_trade_no)
    assert trade is not None and trade.state.paid


async def test_r_pay_4_a_tampered_answer_is_unavailable_never_a_success(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    out_trade_no = _no()
    honest = AlipayTradeProvider(fake.make_client(http))
    await honest.create_trade(
        out_trade_no=out_trade_no, amount_fen=100, subject="罚款", buyer_id=BUYER, expires_at=_in()
    )

    async def tamper(response: httpx.Response) -> None:
        await response.aread()
        text = response.text.replace("WAIT_BUYER_PAY", "TRADE_SUCCESS")  # "it is paid"
        response._content = text.encode()

    async with httpx.AsyncClient(event_hooks={"response": [tamper]}) as mitm_http:
        mitm = AlipayTradeProvider(fake.make_client(mitm_http))
        with pytest.raises(ProviderUnavailableError):
            await mitm.query_trade(out_trade_no)

    _, not_alipays_public = generate_keypair_pem()
    assert fake.app_private_key_pem is not None
    impostor = AlipayTradeProvider(
        AlipayClient(
            gateway_url=fake.gateway_url,
            app_id=fake.app_id,
            app_private_key_pem=fake.app_private_key_pem,
            alipay_public_key_pem=not_alipays_public,
            http=http,
        )
    )
    with pytest.raises(ProviderUnavailableError):
        await impostor.query_trade(out_trade_no)

    async def unsign(response: httpx.Response) -> None:
        await response.aread()
        body = response.text
        response._content = body[: body.rindex(',"sign":')].encode() + b"}"

    # An unsigned refusal proves nothing either: it is not taken for "nothing happened".
    async with httpx.AsyncClient(event_hooks={"response": [unsign]}) as strip_http:
        stripped = AlipayTradeProvider(fake.make_client(strip_http))
        with pytest.raises(ProviderUnavailableError):
            await stripped.query_trade(_no())


# -- R-PAY-5: refunds -----------------------------------------------------------------------
async def test_r_pay_5_a_refund_retried_with_the_same_request_moves_no_money(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    out_trade_no = _no()
    await provider.create_trade(
        out_trade_no=out_trade_no,
        amount_fen=20_000,
        subject="罚款",
        buyer_id=BUYER,
        expires_at=_in(),
    )
    fake.pay(out_trade_no)
    first = await provider.refund(
        out_trade_no=out_trade_no, amount_fen=20_000, out_request_no="RF-1", reason="重复缴款"
    )
    again = await provider.refund(
        out_trade_no=out_trade_no, amount_fen=20_000, out_request_no="RF-1", reason="重复缴款"
    )
    assert (first.refunded_total_fen, again.refunded_total_fen) == (20_000, 20_000)
    assert first.out_request_no == again.out_request_no == "RF-1"
    assert first.refunded_at is not None
    trade = fake.trade(out_trade_no)
    assert trade is not None and trade.refunded_fen == 20_000 and len(trade.refunds) == 1
    with pytest.raises(ProviderRefusedError):  # more than was paid: refused, nothing moved
        await provider.refund(
            out_trade_no=out_trade_no, amount_fen=1, out_request_no="RF-2", reason="x"
        )


# -- R-PAY-7: notifications -----------------------------------------------------------------
async def _paid(
    fake: FakeAlipay, provider: TradeProvider, fen: int = 20_000, expires_at: datetime | None = None
) -> str:
    out_trade_no = _no()
    await provider.create_trade(
        out_trade_no=out_trade_no,
        amount_fen=fen,
        subject="罚款",
        buyer_id=BUYER,
        expires_at=expires_at or _in(),
    )
    fake.pay(out_trade_no)
    return out_trade_no


async def test_r_pay_7_a_genuine_notification_parses(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    out_trade_no = await _paid(fake, provider)
    params = fake.notification_params(out_trade_no)
    notice = provider.verify_notification(params)
    trade = fake.trade(out_trade_no)
    assert trade is not None
    assert (notice.out_trade_no, notice.trade_no, notice.state, notice.total_amount_fen) == (
        out_trade_no,
        trade.trade_no,
        TradeState.TRADE_SUCCESS,
        20_000,
    )
    assert (notice.app_id, notice.seller_id, notice.notify_id) == (
        fake.app_id,
        fake.seller_id,
        params["notify_id"],
    )
    assert notice.paid_at == trade.paid_at.replace(microsecond=0)  # type: ignore[union-attr]
    late = provider.verify_notification(
        fake.notification_params(out_trade_no, trade_status="TRADE_CLOSED")
    )
    assert late.state is TradeState.TRADE_CLOSED  # out of order: the service decides


async def test_r_pay_7_forged_or_altered_notifications_are_rejected(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    out_trade_no = await _paid(fake, provider)
    genuine = fake.notification_params(out_trade_no)
    bad = [
        fake.notification_params(out_trade_no, forged=True),
        dict(genuine, total_amount="0.01"),  # changed after Alipay signed it
        dict(genuine, sign_type="RSA"),
        {k: v for k, v in genuine.items() if k != "sign"},
    ]
    for params in bad:
        with pytest.raises(NotificationRejectedError) as info:
            provider.verify_notification(params)
        assert info.value.reason == "bad_signature"


async def test_r_pay_7_signed_but_unreadable_notifications_are_malformed(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    out_trade_no = await _paid(fake, provider)
    unreadable = [
        fake.notification_params(out_trade_no, overrides={"total_amount": "12.345"}),
        fake.notification_params(out_trade_no, overrides={"trade_status": "TRADE_WHATEVER"}),
        fake.notification_params(out_trade_no, overrides={"notify_type": "trade_refund_sync"}),
    ]
    without_order_no = fake.notification_params(out_trade_no)
    del without_order_no["out_trade_no"]
    unreadable.append(fake.sign_notification(without_order_no))
    for params in unreadable:
        with pytest.raises(NotificationRejectedError) as info:
            provider.verify_notification(params)
        assert info.value.reason == "malformed", params


async def test_r_pay_7_app_seller_and_amount_are_left_to_the_service(
    fake: FakeAlipay, provider: TradeProvider
) -> None:
    """Genuinely signed notices that do not match our order pass the signature check and say
    what they say: the service layer compares them with the order and names the mismatch."""
    out_trade_no = await _paid(fake, provider)
    params = fake.notification_params(
        out_trade_no,
        overrides={
            "app_id": "2021999999999999",
            "seller_id": "2088000000000042",
            "total_amount": "0.01",
        },
    )
    notice = provider.verify_notification(params)
    assert (notice.app_id, notice.seller_id, notice.total_amount_fen) == (
        "2021999999999999",
        "2088000000000042",
        1,
    )


# -- R-JOB-2: the statement -----------------------------------------------------------------
async def test_r_job_2_the_statement_parses_what_the_fake_paid(http: httpx.AsyncClient) -> None:
    noon = datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0)
    with FakeAlipay(clock=lambda: noon) as own:  # one day throughout, whenever this runs
        provider = AlipayTradeProvider(own.make_client(http))
        later = noon + timedelta(minutes=15)
        paid = await _paid(own, provider, 3000, later)
        refunded = await _paid(own, provider, 8000, later)
        unpaid = _no()
        await provider.create_trade(
            out_trade_no=unpaid, amount_fen=100, subject="罚款", buyer_id=BUYER, expires_at=later
        )
        await provider.refund(
            out_trade_no=refunded, amount_fen=2500, out_request_no="R1", reason="x"
        )

        lines = await provider.statement(noon.date())
        assert sorted(
            (x.out_trade_no, x.total_amount_fen, x.refunded_fen) for x in lines
        ) == sorted([(paid, 3000, 0), (refunded, 8000, 2500)])
        theirs = {line.out_trade_no: line for line in own.statement(noon.date())}
        for line in lines:
            assert (line.trade_no, line.paid_at) == (
                theirs[line.out_trade_no].trade_no,
                theirs[line.out_trade_no].paid_at,
            )
        with pytest.raises(ProviderRefusedError) as info:  # no bill for a day still to come
            await provider.statement(noon.date() + timedelta(days=1))
        assert info.value.code == "isp.bill_not_exist"


async def test_r_job_2_a_statement_of_a_past_day(http: httpx.AsyncClient) -> None:
    with FakeAlipay() as own:
        provider = AlipayTradeProvider(own.make_client(http))
        out_trade_no = _no()
        await provider.create_trade(
            out_trade_no=out_trade_no,
            amount_fen=999,
            subject="罚款",
            buyer_id=BUYER,
            expires_at=_in(),
        )
        at = datetime(2025, 3, 1, 23, 59, 59, tzinfo=SHANGHAI)
        own.pay(out_trade_no, at=at)
        lines = await provider.statement(at.date())
        assert [(x.out_trade_no, x.total_amount_fen, x.paid_at) for x in lines] == [
            (out_trade_no, 999, at)
        ]
        assert await provider.statement(at.date() + timedelta(days=1)) == []


async def test_r_job_2_a_slow_statement_keeps_the_deadline(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    impatient = trade_provider_for(_settings(fake, alipay_timeout_s=0.3), http)
    fake.delay_next("bill.download", 5.0)
    with pytest.raises(ProviderUnavailableError):
        await impatient.statement(datetime.now(SHANGHAI).date())
