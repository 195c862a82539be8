"""A fake Alipay open-platform gateway that speaks the real protocol, for tests and the sandbox.

It is a small ASGI app served by uvicorn in a background thread on a free
loopback port. It holds its own RSA keypair (the "Alipay" key) and knows the
app's public key, so it checks every request's RSA2 signature and ``app_id``
exactly as gateway.do does, answers with signed ``<method>_response`` objects,
and sends signed ``trade_status_sync`` notifications. A test therefore drives
``cqcommon.alipay.AlipayClient`` through the same bytes it would exchange with
Alipay, and a bad key or a forged notification fails the same way.

Usage::

    with FakeAlipay() as fake:              # also generates the app's keypair
        client = fake.make_client(http)     # AlipayClient wired to fake.gateway_url and its keys
        trade_no = await client.trade_create("P1", 1250, "罚款", "2088000000000001", notify_url)
        fake.pay("P1")
        body = await fake.send_notification("P1")    # POSTs to the trade's notify_url

Methods: ``alipay.system.oauth.token``, ``alipay.trade.create``, ``.query``,
``.refund``, ``alipay.user.certify.open.initialize``, ``.query`` (POST) and the
``alipay.user.certify.open.certify`` page (GET). Knobs: ``delay_next`` (the call
takes effect but the answer comes late: "paid but our side timed out", R-PAY-4),
``fail_next`` (an injected error answer), forged/overridden notifications.
State is in memory; ``calls`` records what was asked, ``statement`` lists a day's
trades for reconciliation (R-JOB-2).

Everything answered with a gateway-level error uses Alipay's shape
``{"error_response": {"code": "40002", "msg": "Invalid Arguments", "sub_code": ...}, "sign": ...}``;
business failures come in ``<method>_response`` with code 40004 "Business Failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from cqcommon.alipay import (
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

__all__ = ["FakeAlipay", "FakeCertification", "FakeTrade", "RecordedCall", "StatementLine"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SELLER_ID = "2088000000009999"  # the fake merchant's Alipay partner id
METHODS = frozenset(
    {
        "alipay.system.oauth.token",
        "alipay.trade.create",
        "alipay.trade.query",
        "alipay.trade.refund",
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


def _free_loopback_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # port 0: the kernel picks a free port, never a fixed one
    return sock


class FakeAlipay:
    """The fake gateway; start it with ``start()`` or ``with FakeAlipay() as fake``."""

    def __init__(
        self,
        *,
        app_id: str = "2021000000000000",
        app_public_key_pem: str | None = None,
        alipay_private_key_pem: str | None = None,
        host: str = "127.0.0.1",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app_id = app_id
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
        self._host = host
        self._clock = clock or (lambda: datetime.now(SHANGHAI))
        self._lock = threading.Lock()
        self._auth_codes: dict[str, str] = {}
        self._trades: dict[str, FakeTrade] = {}
        self._certs: dict[str, FakeCertification] = {}
        self._injected: dict[str, list[_Injected]] = {}
        self._forger_key: str | None = None
        self._seq = 0
        self.calls: list[RecordedCall] = []
        self.notifications: list[dict[str, str]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_stop: asyncio.Event | None = None
        self.port: int | None = None

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        if self.port is None:
            raise RuntimeError("FakeAlipay is not started")
        return f"http://{self._host}:{self.port}"

    @property
    def gateway_url(self) -> str:
        """The gateway.do URL to configure as ``ALIPAY_GATEWAY_URL``."""
        return self.url + "/gateway.do"

    def start(self, timeout_s: float = 10.0) -> Self:
        """Serve on a free loopback port in a background thread; returns when it accepts."""
        if self._thread is not None:
            raise RuntimeError("FakeAlipay already started")
        sock = _free_loopback_socket(self._host)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            host=self._host,
            port=self.port,
            interface="asgi3",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._loop = None
        self._async_stop = None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-alipay", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("FakeAlipay did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and join its thread (idempotent)."""
        if self._loop is not None and self._async_stop is not None:
            # Ends injected delays at once (the loop may already be closed).
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._async_stop.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout_s)
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
        """The buyer pays the trade (as my.tradePay would); no notification is sent."""
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                raise KeyError(out_trade_no)
            if trade.status == "WAIT_BUYER_PAY":
                trade.status = "TRADE_SUCCESS"
                trade.paid_at = at or self._clock()
            return replace(trade, refunds=dict(trade.refunds))

    def trade(self, out_trade_no: str) -> FakeTrade | None:
        """A copy of a trade's state, or None."""
        with self._lock:
            trade = self._trades.get(out_trade_no)
            return None if trade is None else replace(trade, refunds=dict(trade.refunds))

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

    # -- notifications ----------------------------------------------------------------
    def notification_params(
        self,
        out_trade_no: str,
        *,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The signed form fields of a ``trade_status_sync`` notification for a paid trade.

        ``overrides`` change fields *before* signing (a genuine notification that says
        something else, e.g. another amount or app id); ``forged`` signs with a key
        that is not Alipay's.
        """
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                raise KeyError(out_trade_no)
            if trade.paid_at is None:
                raise ValueError(f"trade {out_trade_no} is not paid; call pay() first")
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
                "seller_id": SELLER_ID,
                "trade_status": trade.status,
                "total_amount": total,
                "receipt_amount": total,
                "invoice_amount": total,
                "buyer_pay_amount": total,
                "point_amount": "0.00",
                "subject": trade.subject,
                "gmt_create": format_timestamp(trade.created_at),
                "gmt_payment": format_timestamp(trade.paid_at),
                "fund_bill_list": json.dumps(
                    [{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
                ),
            }
        params.update(overrides or {})
        key = self._forger() if forged else self._alipay_private_key
        params["sign"] = rsa2_sign(canonical_string(params, exclude=("sign", "sign_type")), key)
        return params

    async def send_notification(
        self,
        out_trade_no: str,
        notify_url: str | None = None,
        *,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
    ) -> str:
        """POST the notification (form-encoded, as Alipay does) and return the response body.

        ``notify_url`` defaults to the one given at ``alipay.trade.create``; pass
        ``http`` to reach an in-process app (e.g. an ``httpx.ASGITransport`` client).
        """
        params = self.notification_params(out_trade_no, forged=forged, overrides=overrides)
        if notify_url is None:
            trade = self.trade(out_trade_no)
            notify_url = trade.notify_url if trade else None
        if not notify_url:
            raise ValueError("no notify_url: give one or create the trade with one")
        with self._lock:
            self.notifications.append(params)
        if http is not None:
            response = await http.post(notify_url, data=params, timeout=timeout_s)
            return response.text
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(notify_url, data=params)
            return response.text

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
            return body
        if method == "alipay.trade.refund":
            return self._trade_refund(biz, now)
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
        existing = self._trades.get(out_trade_no)
        if existing is not None:
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
            )
            self._trades[out_trade_no] = trade
        return {
            "code": SUCCESS_CODE,
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
        }

    def _find_trade(self, method: str, biz: Mapping[str, Any]) -> FakeTrade:
        out_trade_no = biz.get("out_trade_no")
        trade_no = biz.get("trade_no")
        if not out_trade_no and not trade_no:
            raise _business(method, "ACQ.INVALID_PARAMETER", "参数无效")
        for trade in self._trades.values():
            if trade.out_trade_no == out_trade_no or (trade_no and trade.trade_no == trade_no):
                return trade
        raise _business(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")

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
        if path == "/gateway.do" and verb in ("GET", "POST"):
            status, ctype, text = await self._gateway(params, page=verb == "GET")
        elif path.startswith("/_fake/") and verb == "POST":
            status, ctype, text = await self._control(path, params)
        else:
            status, ctype, text = 404, "text/plain; charset=utf-8", "not found"
        await _respond(send, status, ctype, text)


async def _respond(send: Send, status: int, content_type: str, text: str) -> None:
    data = text.encode("utf-8")
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
