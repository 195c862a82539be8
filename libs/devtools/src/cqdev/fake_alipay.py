"""A fake Alipay open-platform gateway that speaks the real protocol, for tests and the sandbox.

It is a small ASGI app served by uvicorn in a background thread on a loopback port
(a free one unless ``port`` is given). It holds its own RSA keypair (the "Alipay" key)
and knows the app's public key, so it checks every request's RSA2 signature and
``app_id`` exactly as gateway.do does, answers with signed ``<method>_response``
objects, and sends signed ``trade_status_sync`` notifications. A test therefore drives
``cqcommon.alipay.AlipayClient`` through the same bytes it would exchange with Alipay,
and a bad key or a forged notification fails the same way.

Usage::

    with FakeAlipay() as fake:              # also generates the app's keypair
        client = fake.make_client(http)     # AlipayClient wired to fake.gateway_url and its keys
        trade_no = await client.trade_create("P1", 1250, "罚款", "2088000000000001", notify_url)
        fake.pay("P1")
        body = await fake.send_notification("P1")    # POSTs to the trade's notify_url

Methods: ``alipay.system.oauth.token``, ``alipay.trade.create`` (``time_expire`` closes
the trade unpaid at that moment; a ``seller_id`` other than the fake merchant's is
refused), ``.query``, ``.close``, ``.refund``,
``alipay.data.dataservice.bill.downloadurl.query`` (a 30 s URL of this server serving
the day's trade bill: a zip of GBK CSV files, downloaded without a signature as at
Alipay), ``alipay.user.certify.open.initialize``, ``.query`` (POST) and the
``alipay.user.certify.open.certify`` page (GET).

Knobs: ``delay_next`` (the call takes effect but the answer comes late: "paid but our
side timed out", R-PAY-4), ``fail_next`` (an injected error answer); both work for
every method and for the bill download (method name :data:`BILL_DOWNLOAD`).
Notifications: ``notification_params`` (genuine, forged, overridden fields, another
``trade_status`` such as a TRADE_CLOSED after the TRADE_SUCCESS), ``send_notification``
(one POST), ``replay_notification`` (the same signed notice N times, K at once) and
``deliver_notification`` (Alipay's retries: again on the schedule until the answer is
exactly ``success``). State is in memory; ``calls`` records what was asked,
``deliveries`` every notification POST, ``statement`` lists a day's paid trades.

Sandbox HTTP routes (``make run`` starts this server, see :func:`serve`):

* ``POST /sandbox/alipay/trades/{trade_no}/pay`` — the buyer pays the trade the
  mini-program got (by Alipay's ``trade_no``); the fake then posts the signed
  notification to the trade's ``notify_url`` and retries on ``notify_schedule_s``
  (sandbox default 0, 1, 2, 4, 8 s; Alipay: 4m, 10m, 10m, 1h, 2h, 6h, 15h) until the
  answer is exactly ``success``. It answers once the first attempt is answered.
* ``POST /_fake/pay`` (form ``out_trade_no``), ``POST /_fake/certify`` — older controls.
* ``GET /_fake/health`` — 200 once serving (the launcher's readiness probe).

Everything answered with a gateway-level error uses Alipay's shape
``{"error_response": {"code": "40002", "msg": "Invalid Arguments", "sub_code": ...}, "sign": ...}``;
business failures come in ``<method>_response`` with code 40004 "Business Failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import html
import io
import json
import os
import re
import secrets
import shlex
import signal
import sys
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

import httpx
from cqcommon.alipay import (
    BILL_KIND_PAYMENT,
    BILL_KIND_REFUND,
    NOTIFY_ACK,
    SHANGHAI,
    SUCCESS_CODE,
    AlipayClient,
    canonical_string,
    fen_to_yuan,
    format_timestamp,
    generate_keypair_pem,
    load_private_key,
    load_public_key,
    public_key_pem,
    response_key,
    rsa2_sign,
    rsa2_verify,
    yuan_to_fen,
)

from cqdev.threaded_server import ThreadedServer

__all__ = [
    "ALIPAY_NOTIFY_SCHEDULE_S",
    "APP_ID",
    "BILL_DOWNLOAD",
    "BILL_URL_METHOD",
    "SANDBOX_NOTIFY_SCHEDULE_S",
    "SELLER_ID",
    "FakeAlipay",
    "FakeCertification",
    "FakeTrade",
    "FakeTradeClosedError",
    "NotifyAttempt",
    "NotifyDelivery",
    "RecordedCall",
    "SandboxKeys",
    "StatementLine",
    "ensure_sandbox_keys",
    "sandbox_env",
    "serve",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SELLER_ID = "2088000000009999"  # the fake merchant's Alipay partner id
APP_ID = "2021000000000000"
BILL_URL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
#: The name ``delay_next`` / ``fail_next`` use for the bill download itself (a plain GET).
BILL_DOWNLOAD: Final = "bill.download"
#: Alipay's notification retry schedule (delay before each attempt, seconds): at once,
#: then 4m, 10m, 10m, 1h, 2h, 6h, 15h — eight notices over about 25 hours.
ALIPAY_NOTIFY_SCHEDULE_S: Final = (0.0, 240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
#: The sandbox's short version, so that a walk by hand sees a retry within seconds.
SANDBOX_NOTIFY_SCHEDULE_S: Final = (0.0, 1.0, 2.0, 4.0, 8.0)
_SANDBOX_PAY_PATH: Final = re.compile(r"/sandbox/alipay/trades/([0-9A-Za-z_]{1,64})/pay")
_BILL_PATH: Final = "/downloadBillFile.resource"
METHODS = frozenset(
    {
        "alipay.system.oauth.token",
        "alipay.trade.create",
        "alipay.trade.query",
        "alipay.trade.close",
        "alipay.trade.refund",
        BILL_URL_METHOD,
        "alipay.user.certify.open.initialize",
        "alipay.user.certify.open.query",
        "alipay.user.certify.open.certify",
    }
)
PAGE_METHODS = frozenset({"alipay.user.certify.open.certify"})
_MAX_BODY = 1 << 20


@dataclass
class FakeTrade:
    """One trade as the fake gateway keeps it."""

    out_trade_no: str
    trade_no: str
    total_amount_fen: int
    subject: str
    buyer_id: str
    notify_url: str | None
    created_at: datetime
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    # out_request_no -> (amount in fen, when)
    refunds: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    time_expire: datetime | None = None  # unpaid at this moment -> TRADE_CLOSED
    closed_at: datetime | None = None
    seller_id: str = SELLER_ID

    @property
    def refunded_fen(self) -> int:
        """Cumulative refunded amount."""
        return sum(amount for amount, _ in self.refunds.values())


@dataclass
class FakeCertification:
    """One face verification started with ``alipay.user.certify.open.initialize``."""

    certify_id: str
    outer_order_no: str
    cert_name: str
    cert_no: str
    biz_code: str
    passed: bool | None = None  # None: the person has not finished


@dataclass(frozen=True)
class StatementLine:
    """One line of the fake's daily statement (what a reconciliation job compares with)."""

    trade_no: str
    out_trade_no: str
    total_amount_fen: int
    refunded_fen: int
    trade_status: str
    paid_at: datetime


@dataclass(frozen=True)
class NotifyAttempt:
    """One POST of a notification to a notify_url, and what came back."""

    notify_id: str
    out_trade_no: str
    trade_status: str
    url: str
    attempt: int  # 1 for the first POST of this delivery
    status_code: int | None  # None: no HTTP answer (``error`` says why)
    answer: str | None
    error: str | None
    at: datetime

    @property
    def acknowledged(self) -> bool:
        """Alipay stops retrying only on HTTP 200 with exactly ``success`` as the body."""
        return self.status_code == 200 and self.answer == NOTIFY_ACK


@dataclass(frozen=True)
class NotifyDelivery:
    """All attempts of one notification (same ``notify_id``), oldest first."""

    notify_id: str
    out_trade_no: str
    url: str
    attempts: tuple[NotifyAttempt, ...]

    @property
    def acknowledged(self) -> bool:
        """True when some attempt was answered ``success`` (retries stopped there)."""
        return any(a.acknowledged for a in self.attempts)


class FakeTradeClosedError(ValueError):
    """The buyer tried to pay a trade that is closed (closed by us, or past time_expire)."""


@dataclass(frozen=True)
class RecordedCall:
    """One gateway.do request the fake accepted (signature and app id were valid)."""

    method: str
    params: dict[str, str]
    biz: dict[str, Any]


@dataclass
class _Injected:
    times: int
    delay_s: float = 0.0
    error: dict[str, str] | None = None


class _RejectError(Exception):
    """A failure answer: ``root`` is ``error_response`` or the method's response key."""

    def __init__(self, root: str, body: dict[str, str]) -> None:
        super().__init__(body.get("sub_code", body.get("code", "")))
        self.root = root
        self.body = body


def _invalid(sub_code: str, sub_msg: str) -> _RejectError:
    return _RejectError(
        "error_response",
        {"code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_msg},
    )


def _business(method: str, sub_code: str, sub_msg: str) -> _RejectError:
    return _RejectError(
        response_key(method),
        {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg},
    )


class FakeAlipay(ThreadedServer):
    """The fake gateway; start it with ``start()`` or ``with FakeAlipay() as fake``."""

    def __init__(
        self,
        *,
        app_id: str = APP_ID,
        app_public_key_pem: str | None = None,
        alipay_private_key_pem: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        seller_id: str = SELLER_ID,
        notify_schedule_s: Sequence[float] = SANDBOX_NOTIFY_SCHEDULE_S,
        notify_timeout_s: float = 5.0,
        bill_url_ttl_s: float = 30.0,
    ) -> None:
        if not notify_schedule_s or any(delay < 0 for delay in notify_schedule_s):
            raise ValueError("notify_schedule_s needs at least one delay, none negative")
        self.app_id = app_id
        self.seller_id = seller_id
        self.notify_schedule_s = tuple(float(delay) for delay in notify_schedule_s)
        self.notify_timeout_s = notify_timeout_s
        self.bill_url_ttl_s = bill_url_ttl_s
        # Without the app's public key, make the app's keypair too (tests that need
        # a client then use app_private_key_pem / make_client).
        self.app_private_key_pem: str | None = None
        if app_public_key_pem is None:
            self.app_private_key_pem, app_public_key_pem = generate_keypair_pem()
        self.app_public_key_pem = app_public_key_pem
        self._app_public_key = load_public_key(app_public_key_pem)
        if alipay_private_key_pem is None:
            alipay_private_key_pem, _ = generate_keypair_pem()
        self._alipay_private_key = load_private_key(alipay_private_key_pem)
        self.alipay_public_key_pem = public_key_pem(self._alipay_private_key)
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(SHANGHAI))
        self._lock = threading.Lock()
        self._auth_codes: dict[str, str] = {}
        self._trades: dict[str, FakeTrade] = {}
        self._by_trade_no: dict[str, FakeTrade] = {}
        # token -> (bill day, monotonic expiry) of the bill URLs handed out
        self._bill_tokens: dict[str, tuple[date, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.deliveries: list[NotifyAttempt] = []
        self._certs: dict[str, FakeCertification] = {}
        self._injected: dict[str, list[_Injected]] = {}
        self._forger_key: str | None = None
        self._seq = 0
        self.calls: list[RecordedCall] = []
        self.notifications: list[dict[str, str]] = []
        self._notify_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    # -- lifecycle --------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        """The gateway.do URL to configure as ``ALIPAY_GATEWAY_URL``."""
        return self.url + "/gateway.do"

    def _notify_client(self) -> httpx.AsyncClient:
        """One HTTP client per event loop for the notifications the fake posts itself: a new
        client per notification cost about 31 ms of CPU each (TLS context, pool), most of the
        fake's time under a payment benchmark."""
        loop = asyncio.get_running_loop()
        client = self._notify_clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self.notify_timeout_s)
            self._notify_clients[loop] = client
        return client

    def _close_notify_clients(self) -> None:
        clients, self._notify_clients = self._notify_clients, {}
        for loop, client in clients.items():
            if loop.is_closed() or client.is_closed:
                continue
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(2)

    def _before_start(self) -> None:
        self._stopping = False

    def _before_stop(self) -> None:
        # pending notification retries are dropped; the clients close on their loop
        self._close_notify_clients()
        self._stopping = True

    def make_client(self, http: httpx.AsyncClient, timeout_s: float = 5.0) -> AlipayClient:
        """An ``AlipayClient`` wired to this fake with the app keypair it generated."""
        if self.app_private_key_pem is None:
            raise RuntimeError("the app keypair was supplied; build AlipayClient yourself")
        return AlipayClient(
            gateway_url=self.gateway_url,
            app_id=self.app_id,
            app_private_key_pem=self.app_private_key_pem,
            alipay_public_key_pem=self.alipay_public_key_pem,
            http=http,
            timeout_s=timeout_s,
        )

    # -- test controls ----------------------------------------------------------------
    def register_auth_code(self, code: str, user_id: str) -> None:
        """Make ``code`` a one-time auth code for ``user_id`` (``sandbox:<id>`` always works)."""
        with self._lock:
            self._auth_codes[code] = user_id

    def pay(self, out_trade_no: str, at: datetime | None = None) -> FakeTrade:
        """The buyer pays the trade (as my.tradePay would); no notification is sent.

        Paying a paid trade changes nothing; a closed trade (closed by the merchant or past
        its ``time_expire``) raises :class:`FakeTradeClosedError`, as the cashier refuses.
        """
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                raise KeyError(out_trade_no)
            self._settle_expiry(trade, self._clock())
            if trade.status == "TRADE_CLOSED" and trade.paid_at is None:
                raise FakeTradeClosedError(f"trade {out_trade_no} is closed")
            if trade.status == "WAIT_BUYER_PAY":
                trade.status = "TRADE_SUCCESS"
                trade.paid_at = at or self._clock()
            return replace(trade, refunds=dict(trade.refunds))

    def trade(self, out_trade_no: str) -> FakeTrade | None:
        """A copy of a trade's state, or None."""
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                return None
            self._settle_expiry(trade, self._clock())
            return replace(trade, refunds=dict(trade.refunds))

    def trade_by_trade_no(self, trade_no: str) -> FakeTrade | None:
        """A copy of a trade's state found by Alipay's ``trade_no``, or None."""
        with self._lock:
            trade = self._by_trade_no.get(trade_no)
        return None if trade is None else self.trade(trade.out_trade_no)

    @staticmethod
    def _settle_expiry(trade: FakeTrade, now: datetime) -> None:
        # Alipay closes an unpaid trade at time_expire; applied lazily, whenever it is seen.
        if (
            trade.status == "WAIT_BUYER_PAY"
            and trade.time_expire is not None
            and now >= trade.time_expire
        ):
            trade.status = "TRADE_CLOSED"
            trade.closed_at = trade.time_expire

    def set_certify_result(self, certify_id: str, passed: bool | None) -> None:
        """The person finished the face check (True/False) or has not yet (None)."""
        with self._lock:
            self._certs[certify_id].passed = passed

    def certification(self, certify_id: str) -> FakeCertification | None:
        """A copy of a verification's state, or None."""
        with self._lock:
            cert = self._certs.get(certify_id)
            return None if cert is None else replace(cert)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect, then answer after ``seconds``."""
        with self._lock:
            self._injected.setdefault(method, []).append(_Injected(times, delay_s=seconds))

    def fail_next(
        self,
        method: str,
        *,
        code: str = "20000",
        msg: str = "Service Currently Unavailable",
        sub_code: str = "isp.unknow-error",
        sub_msg: str = "系统繁忙",
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` answer this (signed) error without effect."""
        error = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}
        with self._lock:
            self._injected.setdefault(method, []).append(_Injected(times, error=error))

    def clear_injections(self) -> None:
        """Forget every failure and delay not yet used (a shared fake between tests)."""
        with self._lock:
            self._injected.clear()

    def calls_of(self, method: str) -> list[RecordedCall]:
        """Accepted calls of one method, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def statement(self, day: date) -> list[StatementLine]:
        """Trades paid on ``day`` (Asia/Shanghai), as the provider's statement lists them."""
        with self._lock:
            lines = [
                StatementLine(
                    trade_no=t.trade_no,
                    out_trade_no=t.out_trade_no,
                    total_amount_fen=t.total_amount_fen,
                    refunded_fen=t.refunded_fen,
                    trade_status=t.status,
                    paid_at=t.paid_at,
                )
                for t in self._trades.values()
                if t.paid_at is not None and t.paid_at.astimezone(SHANGHAI).date() == day
            ]
        return sorted(lines, key=lambda line: (line.paid_at, line.trade_no))

    def trade_bill_zip(self, day: date) -> bytes:
        """The trade bill of ``day`` as Alipay serves it: a zip of two GBK CSV files.

        ``<pid>0156_<yyyyMMdd>_业务明细.csv`` lists a 交易 row per trade paid that day and a
        退款 row (negative amount, with its out_request_no) per refund made that day;
        ``..._业务明细(汇总).csv`` the totals. Both open with Alipay's ``#`` lines.
        Cells carry Alipay's trailing tab. The day is what it is at download time (Alipay
        serves a day only once it is over; the fake serves today's too).
        """
        header = [
            "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间",
            "门店编号", "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）",
            "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
            "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
            "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
        ]  # fmt: skip
        rows: list[tuple[datetime, list[str]]] = []
        paid_total = refund_total = paid_count = refund_count = 0

        def row(trade: FakeTrade, kind: str, at: datetime, fen: int, request_no: str) -> list[str]:
            amount = ("-" if fen < 0 else "") + fen_to_yuan(abs(fen))
            return [
                trade.trade_no, trade.out_trade_no, kind, trade.subject,
                format_timestamp(trade.created_at), format_timestamp(at), "", "", "", "",
                "cq***@example.com", amount, amount, "0.00", "0.00", "0.00", "0.00", "0.00",
                "", "0.00", "0.00", request_no, "0.00", "0.00", "",
            ]  # fmt: skip

        with self._lock:
            for trade in self._trades.values():
                if trade.paid_at is not None and trade.paid_at.astimezone(SHANGHAI).date() == day:
                    fen = trade.total_amount_fen
                    rows.append(
                        (trade.paid_at, row(trade, BILL_KIND_PAYMENT, trade.paid_at, fen, ""))
                    )
                    paid_total, paid_count = paid_total + fen, paid_count + 1
                for request_no, (fen, at) in trade.refunds.items():
                    if at.astimezone(SHANGHAI).date() == day:
                        rows.append((at, row(trade, BILL_KIND_REFUND, at, -fen, request_no)))
                        refund_total, refund_count = refund_total + fen, refund_count + 1
        rows.sort(key=lambda item: item[0])
        user = f"{self.seller_id}0156"
        start = f"{day:%Y年%m月%d日} 00:00:00"
        end = f"{day + timedelta(days=1):%Y年%m月%d日} 00:00:00"
        exported = f"{self._clock().astimezone(SHANGHAI):%Y年%m月%d日 %H:%M:%S}"
        detail = io.StringIO()
        detail.write("#支付宝业务明细查询\r\n")
        detail.write(f"#账号：[{user}]\r\n")
        detail.write(f"#起始日期：[{start}]   终止日期：[{end}]\r\n")
        detail.write("#" + "-" * 41 + "业务明细列表" + "-" * 40 + "\r\n")
        writer = csv.writer(detail, lineterminator="\r\n")
        writer.writerow(header)
        for _, cells in rows:
            writer.writerow([cell + "\t" for cell in cells])
        detail.write("#" + "-" * 41 + "业务明细列表结束" + "-" * 36 + "\r\n")
        detail.write(
            f"#交易合计：{paid_count}笔，商家实收共{fen_to_yuan(paid_total)}元，商家优惠共0.00元\r\n"
        )
        detail.write(
            f"#退款合计：{refund_count}笔，商家实收退款共-{fen_to_yuan(refund_total)}元，"
            "商家优惠退款共0.00元\r\n"
        )
        detail.write(f"#导出时间：[{exported}]\r\n")
        summary = (
            "#支付宝业务汇总查询\r\n"
            f"#账号：[{user}]\r\n"
            "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\r\n"
            f"合计,,{paid_count},{refund_count},{fen_to_yuan(paid_total)},"
            f"{fen_to_yuan(paid_total)}\r\n"
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            # GBK as at Alipay (gb18030 is its superset: a rare character is not lost).
            archive.writestr(
                f"{user}_{day:%Y%m%d}_业务明细.csv", detail.getvalue().encode("gb18030")
            )
            archive.writestr(f"{user}_{day:%Y%m%d}_业务明细(汇总).csv", summary.encode("gb18030"))
        return buffer.getvalue()

    # -- notifications ----------------------------------------------------------------
    def notification_params(
        self,
        out_trade_no: str,
        *,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
        trade_status: str | None = None,
    ) -> dict[str, str]:
        """The signed form fields of a ``trade_status_sync`` notification.

        The trade must be paid or closed (Alipay says nothing of a trade still waiting),
        unless ``trade_status`` names the state to announce: e.g. ``"TRADE_CLOSED"`` for
        a paid trade, to deliver a stale or out-of-order notice after its success.
        ``overrides`` change fields *before* signing (a genuine notification that says
        something else, e.g. another amount, app id or seller); ``forged`` signs with a
        key that is not Alipay's. Each call makes a new ``notify_id``.
        """
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                raise KeyError(out_trade_no)
            self._settle_expiry(trade, self._clock())
            if trade_status is None and trade.status == "WAIT_BUYER_PAY":
                raise ValueError(f"trade {out_trade_no} is not paid; call pay() first")
            status = trade_status or trade.status
            total = fen_to_yuan(trade.total_amount_fen)
            params: dict[str, str] = {
                "notify_time": format_timestamp(self._clock()),
                "notify_type": "trade_status_sync",
                "notify_id": secrets.token_hex(16),
                "app_id": self.app_id,
                "auth_app_id": self.app_id,
                "charset": "utf-8",
                "version": "1.0",
                "sign_type": "RSA2",
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_id": trade.buyer_id,
                "buyer_logon_id": "cq***@example.com",
                "seller_id": trade.seller_id,
                "trade_status": status,
                "total_amount": total,
                "subject": trade.subject,
                "gmt_create": format_timestamp(trade.created_at),
            }
            if trade.paid_at is not None:
                params |= {
                    "receipt_amount": total,
                    "invoice_amount": total,
                    "buyer_pay_amount": total,
                    "point_amount": "0.00",
                    "gmt_payment": format_timestamp(trade.paid_at),
                    "fund_bill_list": json.dumps(
                        [{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
                    ),
                }
            if trade.refunds:
                last_request_no, (_, last_at) = max(
                    trade.refunds.items(), key=lambda item: item[1][1]
                )
                params |= {
                    "refund_fee": fen_to_yuan(trade.refunded_fen),
                    "gmt_refund": format_timestamp(last_at),
                    "out_biz_no": last_request_no,
                }
            if status == "TRADE_CLOSED":
                params["gmt_close"] = format_timestamp(trade.closed_at or self._clock())
        params.update(overrides or {})
        return self.sign_notification(params, forged=forged)

    def sign_notification(
        self, params: Mapping[str, str], *, forged: bool = False
    ) -> dict[str, str]:
        """``params`` with a fresh ``sign``: Alipay's key, or with ``forged`` another one."""
        signed = {k: v for k, v in params.items() if k != "sign"}
        key = self._forger() if forged else self._alipay_private_key
        signed["sign"] = rsa2_sign(canonical_string(signed, exclude=("sign", "sign_type")), key)
        return signed

    def _notify_url_of(self, out_trade_no: str, notify_url: str | None) -> str:
        if notify_url is None:
            trade = self.trade(out_trade_no)
            notify_url = trade.notify_url if trade else None
        if not notify_url:
            raise ValueError("no notify_url: give one or create the trade with one")
        return notify_url

    async def send_notification(
        self,
        out_trade_no: str,
        notify_url: str | None = None,
        *,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
        trade_status: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
    ) -> str:
        """POST one notification (form-encoded, as Alipay does) and return the response body.

        ``notify_url`` defaults to the one given at ``alipay.trade.create``; pass
        ``http`` to reach an in-process app (e.g. an ``httpx.ASGITransport`` client, where
        a path such as ``/api/v1/alipay/notify`` is enough). No retry: see
        :meth:`deliver_notification`.
        """
        params = self.notification_params(
            out_trade_no, forged=forged, overrides=overrides, trade_status=trade_status
        )
        notify_url = self._notify_url_of(out_trade_no, notify_url)
        with self._lock:
            self.notifications.append(params)
        if http is not None:
            response = await http.post(notify_url, data=params, timeout=timeout_s)
            return response.text
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(notify_url, data=params)
            return response.text

    async def replay_notification(
        self,
        params: Mapping[str, str],
        notify_url: str,
        *,
        times: int,
        concurrency: int = 1,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
    ) -> list[str]:
        """POST the very same signed notification ``times`` times, ``concurrency`` at once.

        What Alipay's retries and a duplicated delivery look like from the receiver (same
        ``notify_id``, same signature). Returns the answers in sending order.
        """
        if times < 1 or concurrency < 1:
            raise ValueError("times and concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        form = dict(params)

        async def one(client: httpx.AsyncClient) -> str:
            async with gate:
                with self._lock:
                    self.notifications.append(form)
                response = await client.post(notify_url, data=form, timeout=timeout_s)
                return response.text

        if http is not None:
            return list(await asyncio.gather(*(one(http) for _ in range(times))))
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(times))))

    async def deliver_notification(
        self,
        out_trade_no: str,
        *,
        notify_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        schedule_s: Sequence[float] | None = None,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
        trade_status: str | None = None,
        on_attempt: Callable[[NotifyAttempt], None] | None = None,
    ) -> NotifyDelivery:
        """Deliver one notification as Alipay does: POST it, and again after each delay of
        ``schedule_s`` (default: the constructor's ``notify_schedule_s``) until an answer
        is exactly ``success`` (HTTP 200). Every attempt is the same signed notice (one
        ``notify_id``) and is recorded in ``deliveries``; ``on_attempt`` sees each one.
        """
        params = self.notification_params(
            out_trade_no, forged=forged, overrides=overrides, trade_status=trade_status
        )
        url = self._notify_url_of(out_trade_no, notify_url)
        delays = self.notify_schedule_s if schedule_s is None else tuple(schedule_s)
        attempts: list[NotifyAttempt] = []
        for number, delay in enumerate(delays, start=1):
            await self._pause(delay)
            if self._stopping:
                break
            attempt = await self._post_notification(params, url, number, http)
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if attempt.acknowledged:
                break
        return NotifyDelivery(params["notify_id"], out_trade_no, url, tuple(attempts))

    async def _post_notification(
        self,
        params: dict[str, str],
        url: str,
        number: int,
        http: httpx.AsyncClient | None,
    ) -> NotifyAttempt:
        status: int | None = None
        answer: str | None = None
        error: str | None = None
        with self._lock:
            self.notifications.append(params)
        try:
            client = http if http is not None else self._notify_client()
            response = await client.post(url, data=params, timeout=self.notify_timeout_s)
            status, answer = response.status_code, response.text
        except httpx.HTTPError as exc:  # no answer is a failed attempt, retried like "fail"
            error = f"{type(exc).__name__}: {exc}"
        attempt = NotifyAttempt(
            notify_id=params["notify_id"],
            out_trade_no=params["out_trade_no"],
            trade_status=params["trade_status"],
            url=url,
            attempt=number,
            status_code=status,
            answer=answer,
            error=error,
            at=self._clock(),
        )
        with self._lock:
            self.deliveries.append(attempt)
        return attempt

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            in_server_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            in_server_loop = False
        if in_server_loop:
            await self._sleep(seconds)  # cut short by stop()
        else:
            await asyncio.sleep(seconds)

    def deliveries_of(self, out_trade_no: str) -> list[NotifyAttempt]:
        """Notification POSTs of one trade, oldest first."""
        with self._lock:
            return [d for d in self.deliveries if d.out_trade_no == out_trade_no]

    def _forger(self) -> str:
        if self._forger_key is None:
            self._forger_key, _ = generate_keypair_pem()
        return self._forger_key

    # -- the gateway ------------------------------------------------------------------
    def _sign_response(self, root: str, body: Mapping[str, Any]) -> str:
        # Alipay signs the exact text of the inner object; build it once and embed it.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        sign = rsa2_sign(content, self._alipay_private_key)
        return f'{{"{root}":{content},"sign":"{sign}"}}'

    def _check_request(self, params: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """Gateway-level checks, in the order gateway.do reports them; returns (method, biz)."""
        if not params.get("app_id"):
            raise _invalid("isv.missing-app-id", "缺少AppID参数")
        if params["app_id"] != self.app_id:
            raise _invalid("isv.invalid-app-id", "无效的AppID参数")
        method = params.get("method", "")
        if not method:
            raise _invalid("isv.missing-method", "缺少方法名参数")
        if method not in METHODS:
            raise _invalid("isv.invalid-method", "不存在的方法名")
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "无效的签名类型")
        sign = params.get("sign")
        if not sign:
            raise _invalid("isv.missing-signature", "缺少签名参数")
        content = canonical_string(params)
        if not rsa2_verify(content, sign, self._app_public_key):
            raise _invalid(
                "isv.invalid-signature",
                f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}",
            )
        try:
            datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise _invalid("isv.invalid-charset", "字符集错误")
        biz: dict[str, Any] = {}
        if params.get("biz_content"):
            try:
                loaded = json.loads(params["biz_content"])
            except json.JSONDecodeError:
                raise _invalid("isv.invalid-parameter", "biz_content 不是合法的JSON") from None
            if not isinstance(loaded, dict):
                raise _invalid("isv.invalid-parameter", "biz_content 不是JSON对象")
            biz = loaded
        return method, biz

    def _take_injection(self, method: str) -> _Injected | None:
        queue = self._injected.get(method)
        if not queue:
            return None
        head = queue[0]
        head.times -= 1
        if head.times <= 0:
            queue.pop(0)
        return head

    def _next_trade_no(self, now: datetime) -> str:
        self._seq += 1
        # 28 digits like Alipay's: date, channel, sequence.
        return f"{now:%Y%m%d}2200{self._seq:06d}{secrets.randbelow(10**10):010d}"

    def _dispatch(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply one call to the in-memory state (under the lock); the response object."""
        now = self._clock()
        if method == "alipay.system.oauth.token":
            return self._oauth(params)
        if method == "alipay.trade.create":
            return self._trade_create(params, biz, now)
        if method == "alipay.trade.query":
            trade = self._find_trade(method, biz)
            body: dict[str, Any] = {
                "code": SUCCESS_CODE,
                "msg": "Success",
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": "cq***@example.com",
                "trade_status": trade.status,
                "total_amount": fen_to_yuan(trade.total_amount_fen),
                "buyer_user_id": trade.buyer_id,
            }
            if trade.paid_at is not None:
                body["send_pay_date"] = format_timestamp(trade.paid_at)
                body["buyer_pay_amount"] = fen_to_yuan(trade.total_amount_fen)
                body["receipt_amount"] = fen_to_yuan(trade.total_amount_fen)
            return body
        if method == "alipay.trade.close":
            return self._trade_close(biz, now)
        if method == "alipay.trade.refund":
            return self._trade_refund(biz, now)
        if method == BILL_URL_METHOD:
            return self._bill_url(biz, now)
        if method == "alipay.user.certify.open.initialize":
            return self._certify_initialize(method, biz)
        if method == "alipay.user.certify.open.query":
            cert = self._certs.get(str(biz.get("certify_id", "")))
            if cert is None:
                # The real sub_code is not documented publicly; this one is the fake's.
                raise _business(method, "CERTIFY_ID_NOT_EXIST", "认证记录不存在")
            result: dict[str, Any] = {
                "code": SUCCESS_CODE,
                "msg": "Success",
                "identity_info": "{}",
                "material_info": "{}",
            }
            if cert.passed is not None:
                result["passed"] = "T" if cert.passed else "F"
                if not cert.passed:
                    result["fail_reason"] = "Z1146"
            return result
        raise _invalid("isv.invalid-method", "不存在的方法名")

    def _oauth(self, params: Mapping[str, str]) -> dict[str, Any]:
        if params.get("grant_type") != "authorization_code":
            raise _invalid("isv.grant-type-invalid", "不支持的grant_type")
        code = params.get("code", "")
        if code.startswith("sandbox:") and len(code) > len("sandbox:"):
            user_id = code.removeprefix("sandbox:")
        elif code in self._auth_codes:
            user_id = self._auth_codes.pop(code)  # real auth codes are single use
        else:
            raise _invalid("isv.code-invalid", "授权码code无效")
        return {
            "user_id": user_id,
            "access_token": "authusrB" + secrets.token_hex(16),
            "expires_in": 1296000,
            "refresh_token": "authusrB" + secrets.token_hex(16),
            "re_expires_in": 2592000,
            "auth_start": format_timestamp(self._clock()),
        }

    def _trade_create(
        self, params: Mapping[str, str], biz: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        method = "alipay.trade.create"
        out_trade_no = str(biz.get("out_trade_no") or "")
        subject = str(biz.get("subject") or "")
        buyer_id = str(biz.get("buyer_id") or biz.get("buyer_open_id") or "")
        if not out_trade_no or not subject or not buyer_id:
            raise _business(method, "ACQ.INVALID_PARAMETER", "参数无效")
        try:
            total = yuan_to_fen(str(biz.get("total_amount", "")))
        except ValueError:
            raise _business(method, "ACQ.INVALID_PARAMETER", "total_amount 参数无效") from None
        if not 1 <= total <= 100_000_000_00:
            raise _business(method, "ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        seller_id = str(biz.get("seller_id") or self.seller_id)
        if seller_id != self.seller_id:
            # The app may collect only for the merchant it is signed to.
            raise _business(method, "ACQ.PARTNER_ERROR", "卖家与应用的签约商户不一致")
        time_expire: datetime | None = None
        if biz.get("time_expire"):
            try:
                time_expire = datetime.strptime(
                    str(biz["time_expire"]), "%Y-%m-%d %H:%M:%S"
                ).replace(tzinfo=SHANGHAI)
            except ValueError:
                raise _business(method, "ACQ.INVALID_PARAMETER", "time_expire 格式错误") from None
            if time_expire <= now:
                raise _business(method, "ACQ.INVALID_PARAMETER", "time_expire 已过")
        existing = self._trades.get(out_trade_no)
        if existing is not None:
            self._settle_expiry(existing, now)
            # Alipay: the same out_trade_no again is fine while unpaid and unchanged.
            if existing.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise _business(method, "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.status == "TRADE_CLOSED":
                raise _business(method, "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.total_amount_fen != total or existing.buyer_id != buyer_id:
                raise _business(method, "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            trade = existing
        else:
            trade = FakeTrade(
                out_trade_no=out_trade_no,
                trade_no=self._next_trade_no(now),
                total_amount_fen=total,
                subject=subject,
                buyer_id=buyer_id,
                notify_url=params.get("notify_url") or None,
                created_at=now,
                time_expire=time_expire,
                seller_id=seller_id,
            )
            self._trades[out_trade_no] = trade
            self._by_trade_no[trade.trade_no] = trade
        return {
            "code": SUCCESS_CODE,
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
        }

    def _find_trade(self, method: str, biz: Mapping[str, Any]) -> FakeTrade:
        out_trade_no = str(biz.get("out_trade_no") or "")
        trade_no = str(biz.get("trade_no") or "")
        if not out_trade_no and not trade_no:
            raise _business(method, "ACQ.INVALID_PARAMETER", "参数无效")
        # Alipay: when both are given, trade_no decides.
        trade = self._by_trade_no.get(trade_no) if trade_no else self._trades.get(out_trade_no)
        if trade is None:
            raise _business(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
        self._settle_expiry(trade, self._clock())
        return trade

    def _trade_close(self, biz: dict[str, Any], now: datetime) -> dict[str, Any]:
        method = "alipay.trade.close"
        trade = self._find_trade(method, biz)
        if trade.status != "WAIT_BUYER_PAY":
            # Only a trade waiting for payment can be closed (paid, or closed already).
            raise _business(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        trade.closed_at = now
        return {
            "code": SUCCESS_CODE,
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }

    def _bill_url(self, biz: dict[str, Any], now: datetime) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            # The fake keeps trades only; Alipay's "signcustomer" (account) bill is not here.
            raise _invalid("isv.invalid-arguments", "bill_type 参数不合法（仅支持 trade）")
        try:
            day = datetime.strptime(str(biz.get("bill_date", "")), "%Y-%m-%d").date()
        except ValueError:
            # Monthly bills (yyyy-MM) exist at Alipay; the fake has daily ones only.
            raise _invalid("isv.invalid-arguments", "bill_date 参数不合法") from None
        if day > now.astimezone(SHANGHAI).date():
            raise _business(BILL_URL_METHOD, "isp.bill_not_exist", "账单不存在")
        token = secrets.token_hex(16)
        self._bill_tokens[token] = (day, time.monotonic() + self.bill_url_ttl_s)
        stamp = f"{day:%Y%m%d}"
        user = f"{self.seller_id}0156"
        query = urllib.parse.urlencode(
            {
                "bizType": "trade",
                "userId": user,
                "fileType": "csv.zip",
                "bizDates": stamp,
                "downloadFileName": f"{user}_{stamp}.csv.zip",
                "fileId": f"/trade/{user}/{stamp}.csv.zip",
                "timestamp": str(int(time.time() * 1000)),
                "token": token,
            }
        )
        return {
            "code": SUCCESS_CODE,
            "msg": "Success",
            "bill_download_url": f"{self.url}{_BILL_PATH}?{query}",
        }

    def _trade_refund(self, biz: dict[str, Any], now: datetime) -> dict[str, Any]:
        method = "alipay.trade.refund"
        trade = self._find_trade(method, biz)
        try:
            amount = yuan_to_fen(str(biz.get("refund_amount", "")))
        except ValueError:
            raise _business(method, "ACQ.INVALID_PARAMETER", "refund_amount 参数无效") from None
        # Without out_request_no Alipay treats the call as the one full refund of the trade.
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        fund_change = "N"
        if request_no in trade.refunds:
            if trade.refunds[request_no][0] != amount:
                raise _business(method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原请求不一致")
        else:
            if trade.status not in ("TRADE_SUCCESS",) or amount <= 0:
                raise _business(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.refunded_fen + amount > trade.total_amount_fen:
                raise _business(method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            trade.refunds[request_no] = (amount, now)
            fund_change = "Y"
            if trade.refunded_fen == trade.total_amount_fen:
                trade.status = "TRADE_CLOSED"  # a full refund closes the trade
        return {
            "code": SUCCESS_CODE,
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "cq***@example.com",
            "fund_change": fund_change,
            "refund_fee": fen_to_yuan(trade.refunded_fen),
            "gmt_refund_pay": format_timestamp(trade.refunds[request_no][1]),
            "buyer_user_id": trade.buyer_id,
        }

    def _certify_initialize(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        identity = biz.get("identity_param")
        if isinstance(identity, str):  # older callers send it as a JSON string
            try:
                identity = json.loads(identity)
            except json.JSONDecodeError:
                identity = None
        if not isinstance(identity, dict):
            raise _invalid("isv.missing-parameter", "缺少 identity_param")
        outer_order_no = str(biz.get("outer_order_no") or "")
        biz_code = str(biz.get("biz_code") or "")
        cert_name = str(identity.get("cert_name") or "")
        cert_no = str(identity.get("cert_no") or "")
        if (
            not outer_order_no
            or len(outer_order_no) > 32
            or biz_code not in ("FACE", "CERT_PHOTO", "CERT_PHOTO_FACE", "SMART_FACE")
            or identity.get("identity_type") != "CERT_INFO"
            or identity.get("cert_type") != "IDENTITY_CARD"
            or not cert_name
            or not cert_no
        ):
            raise _business(method, "INVALID_PARAMETER", "参数有误")
        certify_id = secrets.token_hex(16)
        self._certs[certify_id] = FakeCertification(
            certify_id=certify_id,
            outer_order_no=outer_order_no,
            cert_name=cert_name,
            cert_no=cert_no,
            biz_code=biz_code,
        )
        return {"code": SUCCESS_CODE, "msg": "Success", "certify_id": certify_id}

    async def _gateway(self, params: dict[str, str], *, page: bool) -> tuple[int, str, str]:
        """(status, content type, body) of one gateway.do request."""
        delay = 0.0
        method = params.get("method", "")
        try:
            with self._lock:
                method, biz = self._check_request(params)
                if (method in PAGE_METHODS) != page:
                    raise _invalid("isv.invalid-method", "该方法不支持此调用方式")
                self.calls.append(RecordedCall(method, dict(params), biz))
                injected = self._take_injection(method)
                if injected is not None and injected.error is not None:
                    raise _RejectError(response_key(method), dict(injected.error))
                if injected is not None:
                    delay = injected.delay_s
                if page:
                    cert = self._certs.get(str(biz.get("certify_id", "")))
                    if cert is None:
                        raise _business(method, "CERTIFY_ID_NOT_EXIST", "认证记录不存在")
                    return 200, "text/html; charset=utf-8", self._certify_page(cert.certify_id)
                body = self._sign_response(
                    response_key(method), self._dispatch(method, params, biz)
                )
        except _RejectError as reject:
            body = self._sign_response(reject.root, reject.body)
        await self._sleep(delay)
        return 200, "application/json;charset=utf-8", body

    async def _sleep(self, seconds: float) -> None:
        # Waits on the stop event, so that stop() never waits for a long injected delay.
        if seconds <= 0 or self._async_stop is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._async_stop.wait(), seconds)

    def _certify_page(self, certify_id: str) -> str:
        cid = html.escape(certify_id)
        return (
            "<!doctype html><meta charset=utf-8><title>Fake Alipay 人脸验证</title>"
            f"<h1>Fake Alipay face verification</h1><p>certify_id: {cid}</p>"
            '<form method=post action="/_fake/certify">'
            f'<input type=hidden name=certify_id value="{cid}">'
            "<button name=passed value=T>通过 pass</button> "
            "<button name=passed value=F>不通过 fail</button>"
            "</form>"
        )

    async def _download_bill(self, params: Mapping[str, str]) -> tuple[int, str, str | bytes]:
        """The bill file behind a URL from the bill query: unsigned, the token is the key."""
        delay = 0.0
        with self._lock:
            injected = self._take_injection(BILL_DOWNLOAD)
            entry = self._bill_tokens.get(params.get("token", ""))
        if injected is not None and injected.error is not None:
            return 503, "text/plain; charset=utf-8", "service unavailable"
        if injected is not None:
            delay = injected.delay_s
        if entry is None or time.monotonic() > entry[1]:
            # Alipay's page says the link timed out; the fake answers 403 with the same words.
            return 403, "text/plain; charset=utf-8", "下载超时，请重新下载"
        data = self.trade_bill_zip(entry[0])
        await self._sleep(delay)
        return 200, "application/zip", data

    async def _sandbox_pay(self, trade_no: str) -> tuple[int, str, str]:
        """``POST /sandbox/alipay/trades/{trade_no}/pay``: pay, then notify with retries.

        Answers once the first notification attempt has an answer (or timed out); the
        retries go on in the background on ``notify_schedule_s``. Paying a paid trade
        again sends its notification again, as a retry from Alipay would.
        """
        found = self.trade_by_trade_no(trade_no)
        if found is None:
            return _json(404, {"error": "ACQ.TRADE_NOT_EXIST", "trade_no": trade_no})
        try:
            trade = self.pay(found.out_trade_no)
        except FakeTradeClosedError:
            return _json(409, {"error": "ACQ.TRADE_HAS_CLOSE", "trade_no": trade_no})
        payload: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": fen_to_yuan(trade.total_amount_fen),
            "notify_url": trade.notify_url,
            "retry_schedule_s": list(self.notify_schedule_s),
            "first_attempt": None,
        }
        if not trade.notify_url:
            return _json(200, payload)
        first: asyncio.Future[NotifyAttempt] = asyncio.get_running_loop().create_future()

        def on_attempt(attempt: NotifyAttempt) -> None:
            if not first.done():
                first.set_result(attempt)

        task = asyncio.create_task(
            self.deliver_notification(trade.out_trade_no, on_attempt=on_attempt)
        )
        self._tasks.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._tasks.discard)
        # Until the first attempt has its answer, or the delivery ended without one.
        waiters: set[asyncio.Future[Any]] = {first, task}
        await asyncio.wait(waiters, timeout=self.notify_timeout_s + 1)
        if first.done():
            attempt = first.result()
            payload["first_attempt"] = {
                "notify_id": attempt.notify_id,
                "status_code": attempt.status_code,
                "answer": attempt.answer,
                "error": attempt.error,
                "acknowledged": attempt.acknowledged,
            }
        return _json(200, payload)

    async def _control(self, path: str, params: dict[str, str]) -> tuple[int, str, str]:
        """Sandbox controls over HTTP (the same as the Python methods), for manual demos."""
        try:
            if path == "/_fake/pay":
                out_trade_no = params.get("out_trade_no", "")
                self.pay(out_trade_no)
                sent = ""
                if params.get("notify", "1") == "1":
                    sent = await self.send_notification(out_trade_no)
                payload = {"out_trade_no": out_trade_no, "notify_response": sent}
            elif path == "/_fake/certify":
                self.set_certify_result(params.get("certify_id", ""), params.get("passed") == "T")
                payload = {
                    "certify_id": params.get("certify_id", ""),
                    "passed": params.get("passed", ""),
                }
            else:
                return 404, "text/plain; charset=utf-8", "not found"
        except (KeyError, ValueError, httpx.HTTPError) as exc:
            return 400, "text/plain; charset=utf-8", f"{type(exc).__name__}: {exc}"
        return 200, "application/json;charset=utf-8", json.dumps(payload, ensure_ascii=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] != "http":
            return
        if self._async_stop is None:
            # Created inside the server's loop; stop() sets it from the test's thread.
            self._loop = asyncio.get_running_loop()
            self._async_stop = asyncio.Event()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > _MAX_BODY:
                await _respond(send, 413, "text/plain", "too large")
                return
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        try:
            # SDKs put common params in the query and biz_content in the body: merge both.
            params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            await _respond(send, 400, "text/plain", "body is not UTF-8")
            return
        path, verb = scope["path"], scope["method"]
        status: int
        ctype: str
        text: str | bytes
        sandbox_pay = _SANDBOX_PAY_PATH.fullmatch(path)
        if path == "/gateway.do" and verb in ("GET", "POST"):
            status, ctype, text = await self._gateway(params, page=verb == "GET")
        elif path == _BILL_PATH and verb == "GET":
            status, ctype, text = await self._download_bill(params)
        elif sandbox_pay is not None and verb == "POST":
            status, ctype, text = await self._sandbox_pay(sandbox_pay.group(1))
        elif path == "/_fake/health" and verb == "GET":
            status, ctype, text = 200, "text/plain; charset=utf-8", "ok"
        elif path.startswith("/_fake/") and verb == "POST":
            status, ctype, text = await self._control(path, params)
        else:
            status, ctype, text = 404, "text/plain; charset=utf-8", "not found"
        await _respond(send, status, ctype, text)


def _json(status: int, payload: Mapping[str, Any]) -> tuple[int, str, str]:
    return status, "application/json;charset=utf-8", json.dumps(payload, ensure_ascii=False)


async def _respond(send: Send, status: int, content_type: str, text: str | bytes) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


# -- the sandbox server (``python -m cqdev fake-alipay``, started by ``make run``) ----------
APP_KEY_FILE: Final = "app_private_key.pem"
ALIPAY_KEY_FILE: Final = "alipay_private_key.pem"


@dataclass(frozen=True)
class SandboxKeys:
    """The sandbox's two keypairs: the app's (signs requests) and the fake Alipay's."""

    app_private_key_pem: str
    alipay_private_key_pem: str

    @property
    def app_public_key_pem(self) -> str:
        """What the fake verifies requests with."""
        return public_key_pem(self.app_private_key_pem)

    @property
    def alipay_public_key_pem(self) -> str:
        """What the services verify answers and notifications with."""
        return public_key_pem(self.alipay_private_key_pem)


def _load_or_create_key(path: Path) -> str:
    """The PEM private key at ``path``, made (0600) on first use.

    Created under a temporary name and linked into place, so two processes starting at
    once (the launcher and the fake it starts) end up with the one same key.
    """
    if not path.exists():
        private_pem, _ = generate_keypair_pem()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(private_pem)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if another process got there first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a private key readable by others is fixed, not trusted as is
    return path.read_text(encoding="ascii")


def ensure_sandbox_keys(keys_dir: Path) -> SandboxKeys:
    """Load the sandbox keypairs from ``keys_dir`` (``.local/alipay``), creating them once."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SandboxKeys(
        app_private_key_pem=_load_or_create_key(keys_dir / APP_KEY_FILE),
        alipay_private_key_pem=_load_or_create_key(keys_dir / ALIPAY_KEY_FILE),
    )


def sandbox_env(
    gateway_url: str,
    keys: SandboxKeys,
    *,
    notify_url: str | None = None,
    app_id: str = APP_ID,
    seller_id: str = SELLER_ID,
) -> dict[str, str]:
    """The settings env a service needs to talk to the fake at ``gateway_url`` (R-SBX-1)."""
    env = {
        "ALIPAY_GATEWAY_URL": gateway_url,
        "ALIPAY_APP_ID": app_id,
        "ALIPAY_SELLER_ID": seller_id,
        "ALIPAY_APP_PRIVATE_KEY_PEM": keys.app_private_key_pem,
        "ALIPAY_PUBLIC_KEY_PEM": keys.alipay_public_key_pem,
    }
    if notify_url:
        env["ALIPAY_NOTIFY_URL"] = notify_url
    return env


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.replace(path)


def serve(
    *,
    port: int,
    keys_dir: Path,
    host: str = "127.0.0.1",
    env_file: Path | None = None,
    notify_schedule_s: Sequence[float] = SANDBOX_NOTIFY_SCHEDULE_S,
    out: TextIO | None = None,
) -> int:
    """Run the fake on ``host:port`` with the keys of ``keys_dir`` until SIGTERM / Ctrl-C.

    Prints the URL, the non-secret settings and the sandbox pay route; the whole env
    (PEM keys included) goes only to ``env_file`` (0600, shell ``export`` lines, written
    atomically right after the server accepts), never to the log. Exit code 0 on a
    signal, 1 when the port is taken.
    """
    stream = out or sys.stdout
    keys = ensure_sandbox_keys(keys_dir)
    fake = FakeAlipay(
        app_public_key_pem=keys.app_public_key_pem,
        alipay_private_key_pem=keys.alipay_private_key_pem,
        host=host,
        port=port,
        notify_schedule_s=notify_schedule_s,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            fake.start()
        except (OSError, RuntimeError) as exc:
            print(f"fake-alipay: cannot serve on {host}:{port}: {exc}", file=stream, flush=True)
            return 1
        env = sandbox_env(fake.gateway_url, keys)
        if env_file is not None:
            _write_private(
                env_file, "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
            )
        lines = [
            f"fake-alipay: serving {fake.url} (gateway {fake.gateway_url})",
            *(
                f"  {k}={v}"
                for k, v in env.items()
                if k not in ("ALIPAY_APP_PRIVATE_KEY_PEM", "ALIPAY_PUBLIC_KEY_PEM")
            ),
            f"  keys: {keys_dir / APP_KEY_FILE}, {keys_dir / ALIPAY_KEY_FILE}"
            + (f"; full env: {env_file}" if env_file is not None else ""),
            f"  pay a sandbox trade: curl -X POST {fake.url}/sandbox/alipay/trades/<trade_no>/pay",
        ]
        print("\n".join(lines), file=stream, flush=True)
        while not stop.wait(3600):
            pass
        return 0
    finally:
        fake.stop()
        for s, h in previous.items():
            signal.signal(s, h)
