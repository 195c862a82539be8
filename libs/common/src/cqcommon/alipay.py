"""Alipay open-platform adapter: RSA2 signing, gateway.do calls, notification checks.

Shared by the gateway (login: ``alipay.system.oauth.token``), adjudication (face
verification: ``alipay.user.certify.open.*``, R-ADJ-8) and payment
(``alipay.trade.create/query/refund`` and the asynchronous ``trade_status_sync``
notification, R-PAY-3/4/5/7). It speaks the real protocol, so the same code runs
against ``https://openapi.alipay.com/gateway.do`` and against
``cqdev.fake_alipay`` in tests and the sandbox.

The protocol in brief:

* A request is a form-encoded POST of the common parameters (``app_id``,
  ``method``, ``format``, ``charset``, ``sign_type``, ``timestamp``, ``version``,
  optional ``notify_url``) plus ``biz_content`` (the business parameters as a JSON
  string) and ``sign``.
* ``sign`` is RSA2 = SHA256withRSA (PKCS#1 v1.5), base64, over the *canonical
  string*: every non-empty parameter except ``sign``, sorted by key, joined as
  ``k=v`` with ``&``, values not URL-encoded.
* A response is ``{"<method with . -> _>_response": {...}, "sign": "..."}`` (or
  ``error_response``). Alipay signs the exact bytes of the inner object as it
  wrote them, so verification uses the raw substring of the body, never a
  re-serialisation (key order, spacing and escapes would differ).
* A notification is a form POST signed like a request, except that ``sign_type``
  is also left out of the canonical string.

Money is integer fen inside the system; Alipay amounts are yuan strings with two
decimals, converted here exactly (no floats). Nothing connects at import time:
the HTTP client is injected and every call has a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import re
import textwrap
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "NOTIFY_ACK",
    "SUCCESS_CODE",
    "TRADE_NOT_EXIST",
    "AlipayAdapterError",
    "AlipayClient",
    "AlipayError",
    "AlipaySignatureError",
    "AlipayTransportError",
    "CertifyOutcome",
    "OAuthToken",
    "RefundResult",
    "TradeNotification",
    "TradeStatus",
    "build_request_params",
    "canonical_string",
    "extract_signed_content",
    "fen_to_yuan",
    "format_timestamp",
    "generate_keypair_pem",
    "load_private_key",
    "load_public_key",
    "parse_gateway_response",
    "parse_trade_notification",
    "public_key_pem",
    "response_key",
    "rsa2_sign",
    "rsa2_verify",
    "sign_params",
    "verify_notification",
    "yuan_to_fen",
]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
SUCCESS_CODE: Final = "10000"
#: The body a notification endpoint must answer once it has recorded the notification;
#: anything else makes Alipay retry (API.md).
NOTIFY_ACK: Final = "success"
#: ``sub_code`` of ``alipay.trade.query/refund`` for an unknown ``out_trade_no``.
TRADE_NOT_EXIST: Final = "ACQ.TRADE_NOT_EXIST"
#: Alipay's "system busy / unknown error" answers: the outcome of the call is unknown.
_UNKNOWN_OUTCOME_CODES: Final = frozenset({"20000"})
_UNKNOWN_OUTCOME_SUB_CODES: Final = frozenset(
    {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "isp.unknown-error"}
)

PrivateKeyLike = str | rsa.RSAPrivateKey
PublicKeyLike = str | rsa.RSAPublicKey


# -- errors -----------------------------------------------------------------------------
class AlipayAdapterError(Exception):
    """Base of every failure raised by this module."""


class AlipayError(AlipayAdapterError):
    """Alipay answered, and the answer is a failure (``error_response`` or ``code`` != 10000).

    ``verified`` is False when the error came without a signature (Alipay does not
    sign every error); such an error is still a failure, never a success.
    """

    def __init__(
        self,
        code: str,
        msg: str = "",
        sub_code: str | None = None,
        sub_msg: str | None = None,
        *,
        method: str = "",
        verified: bool = True,
    ) -> None:
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.method = method
        self.verified = verified
        super().__init__(
            f"{method or 'alipay'}: {code} {msg} {sub_code or ''} {sub_msg or ''}".strip()
        )

    @property
    def not_found(self) -> bool:
        """True when Alipay says the trade does not exist (``ACQ.TRADE_NOT_EXIST``)."""
        return self.sub_code == TRADE_NOT_EXIST

    @property
    def outcome_unknown(self) -> bool:
        """True for "system busy" answers: the call may or may not have taken effect.

        A caller must resolve it by querying, never by repeating a charge (R-PAY-4).
        """
        return self.code in _UNKNOWN_OUTCOME_CODES or self.sub_code in _UNKNOWN_OUTCOME_SUB_CODES


class AlipaySignatureError(AlipayAdapterError):
    """A response or notification whose signature does not verify (or is missing)."""


class AlipayTransportError(AlipayAdapterError):
    """No usable answer: timeout, connection failure, non-200 status or malformed body.

    The outcome is unknown: for ``trade_create``/``trade_refund`` the caller must
    query before doing anything else (R-PAY-4).
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        self.timed_out = timed_out
        super().__init__(message)


# -- results ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OAuthToken:
    """Result of ``alipay.system.oauth.token``: who logged in."""

    user_id: str
    access_token: str
    expires_in: int
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class TradeStatus:
    """Result of ``alipay.trade.query``."""

    trade_no: str
    trade_status: str  # WAIT_BUYER_PAY | TRADE_CLOSED | TRADE_SUCCESS | TRADE_FINISHED
    total_amount_fen: int
    out_trade_no: str = ""
    buyer_user_id: str | None = None
    paid_at: datetime | None = None  # send_pay_date, Asia/Shanghai

    @property
    def is_paid(self) -> bool:
        """TRADE_SUCCESS (refundable) and TRADE_FINISHED (final) both mean the money arrived."""
        return self.trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED")


@dataclass(frozen=True, slots=True)
class RefundResult:
    """Result of ``alipay.trade.refund``.

    ``refund_fee_fen`` is the trade's *cumulative* refunded amount, as Alipay
    reports it; ``fund_change`` is False when this request moved no money (a
    repeated ``out_request_no``).
    """

    trade_no: str
    out_trade_no: str
    out_request_no: str
    refund_fee_fen: int
    fund_change: bool
    refunded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TradeNotification:
    """The fields of a verified ``trade_status_sync`` notification that the payment service uses."""

    notify_id: str
    app_id: str
    out_trade_no: str
    trade_no: str
    trade_status: str
    total_amount_fen: int
    buyer_id: str | None
    paid_at: datetime | None


class CertifyOutcome(enum.StrEnum):
    """Result of ``alipay.user.certify.open.query``: ``passed`` is "T" or "F".

    A query before the person finished has no ``passed`` value here: PENDING.
    (Real Alipay reports "F" until a verification passes, so a caller must also
    treat "F" inside its verification window as "not passed yet".)
    """

    PASSED = "T"
    FAILED = "F"
    PENDING = "PENDING"


# -- money ------------------------------------------------------------------------------
_YUAN_RE: Final = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?")


def fen_to_yuan(fen: int) -> str:
    """12_50 -> "12.50". Integer arithmetic only: a float would round some amounts wrongly."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amount must be integer fen")
    if fen < 0:
        raise ValueError("amount must not be negative")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(yuan: str) -> int:
    """ "12.50" (or "12.5", "12") -> 1250; a sign, exponent or 3rd decimal is an error."""
    match = _YUAN_RE.fullmatch(yuan)
    if match is None:
        raise ValueError(f"not a yuan amount: {yuan!r}")
    whole, frac = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(frac.ljust(2, "0"))


# -- keys -------------------------------------------------------------------------------
def _pem_from_bare(key: str, label: str) -> bytes:
    # Alipay's key tool and console hand out bare base64 (no PEM armour); accept both.
    body = "".join(key.split())
    return f"-----BEGIN {label}-----\n{textwrap.fill(body, 64)}\n-----END {label}-----\n".encode()


def load_private_key(key: PrivateKeyLike) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8) or Alipay's bare base64 form."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    text = key.strip()
    candidates = (
        [text.encode()]
        if "-----BEGIN" in text
        else [_pem_from_bare(text, "PRIVATE KEY"), _pem_from_bare(text, "RSA PRIVATE KEY")]
    )
    last: Exception | None = None
    for pem in candidates:
        try:
            loaded = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            last = exc
            continue
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("Alipay RSA2 needs an RSA private key")
        return loaded
    raise ValueError("cannot load the RSA private key") from last


def load_public_key(key: PublicKeyLike) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1) or bare base64."""
    if isinstance(key, rsa.RSAPublicKey):
        return key
    text = key.strip()
    pem = text.encode() if "-----BEGIN" in text else _pem_from_bare(text, "PUBLIC KEY")
    loaded = serialization.load_pem_public_key(pem)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("Alipay RSA2 needs an RSA public key")
    return loaded


def public_key_pem(private_key: PrivateKeyLike) -> str:
    """The SubjectPublicKeyInfo PEM of a private key (what the other side verifies with)."""
    return (
        load_private_key(private_key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def generate_keypair_pem(key_size: int = 2048) -> tuple[str, str]:
    """A fresh (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) pair for tests/sandbox."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private_pem, public_key_pem(private)


# -- signing ----------------------------------------------------------------------------
def canonical_string(params: Mapping[str, str], *, exclude: Collection[str] = ("sign",)) -> str:
    """The string Alipay signs: non-empty params except ``exclude``, sorted, ``k=v`` & joined.

    Values stay as they are (not URL-encoded): the signature covers the decoded values.
    """
    items = sorted((k, v) for k, v in params.items() if k not in exclude and v)
    return "&".join(f"{k}={v}" for k, v in items)


def rsa2_sign(content: str, private_key: PrivateKeyLike) -> str:
    """SHA256withRSA (PKCS#1 v1.5) over the UTF-8 bytes of ``content``, base64."""
    signature = load_private_key(private_key).sign(
        content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(content: str, signature_b64: str, public_key: PublicKeyLike) -> bool:
    """True only if ``signature_b64`` is a valid RSA2 signature of ``content``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        load_public_key(public_key).verify(
            signature, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def sign_params(params: Mapping[str, str], private_key: PrivateKeyLike) -> str:
    """The ``sign`` value of a request (canonical string without ``sign``; ``sign_type`` kept)."""
    return rsa2_sign(canonical_string(params), private_key)


def format_timestamp(now: datetime | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Asia/Shanghai, the only form gateway.do accepts."""
    moment = now.astimezone(SHANGHAI) if now is not None else datetime.now(SHANGHAI)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None


def build_request_params(
    *,
    app_id: str,
    method: str,
    private_key: PrivateKeyLike,
    biz_content: Mapping[str, Any] | None = None,
    notify_url: str | None = None,
    extra: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The signed parameter set of one gateway.do call (form POST body or GET query)."""
    params: dict[str, str] = {
        "app_id": app_id,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": format_timestamp(now),
        "version": "1.0",
    }
    if notify_url:
        params["notify_url"] = notify_url
    if biz_content is not None:
        # Compact and unescaped: what Alipay's own SDKs send; the signature covers this text.
        params["biz_content"] = json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))
    for key, value in (extra or {}).items():
        if key in params or key == "sign":
            raise ValueError(f"extra parameter {key!r} would override a common parameter")
        params[key] = value
    params["sign"] = sign_params(params, private_key)
    return params


# -- responses --------------------------------------------------------------------------
def response_key(method: str) -> str:
    """``alipay.trade.query`` -> ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


_WS: Final = " \t\r\n"


def _top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Raw [start, end) span of every top-level member value of a JSON object text.

    A real JSON scan (not a search for ``,"sign":``), so a string value that
    happens to contain ``"sign"`` cannot move the boundaries.
    """
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}

    def skip(i: int) -> int:
        while i < len(text) and text[i] in _WS:
            i += 1
        return i

    i = skip(0)
    if i >= len(text) or text[i] != "{":
        raise ValueError("response is not a JSON object")
    i = skip(i + 1)
    if i < len(text) and text[i] == "}":
        return spans
    while True:
        key, i = decoder.raw_decode(text, i)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        i = skip(i)
        if i >= len(text) or text[i] != ":":
            raise ValueError("expected ':'")
        start = skip(i + 1)
        _, end = decoder.raw_decode(text, start)
        spans[key] = (start, end)
        i = skip(end)
        if i < len(text) and text[i] == ",":
            i = skip(i + 1)
            continue
        if i < len(text) and text[i] == "}":
            return spans
        raise ValueError("expected ',' or '}'")


def extract_signed_content(raw: str, method: str) -> tuple[str, str, str | None]:
    """(root key, raw text of the response object, ``sign`` or None) from a gateway.do body.

    The root is ``<method>_response`` or, for gateway-level failures, ``error_response``.
    """
    try:
        spans = _top_level_spans(raw)
    except (ValueError, IndexError) as exc:
        raise AlipayTransportError(f"{method}: malformed response body") from exc
    root = response_key(method)
    if root not in spans:
        root = "error_response"
        if root not in spans:
            raise AlipayTransportError(f"{method}: response has no {response_key(method)}")
    start, end = spans[root]
    sign: str | None = None
    if "sign" in spans:
        s_start, s_end = spans["sign"]
        value = json.loads(raw[s_start:s_end])
        sign = value if isinstance(value, str) and value else None
    return root, raw[start:end], sign


def parse_gateway_response(
    raw: str, method: str, alipay_public_key: PublicKeyLike
) -> dict[str, Any]:
    """Verify a gateway.do response and return its response object.

    Raises ``AlipaySignatureError`` for a bad signature (or an unsigned success),
    ``AlipayError`` for ``error_response`` or a ``code`` other than 10000.
    """
    root, content, sign = extract_signed_content(raw, method)
    body = json.loads(content)
    if not isinstance(body, dict):
        raise AlipayTransportError(f"{method}: response object is not a JSON object")
    is_error = root == "error_response" or ("code" in body and body["code"] != SUCCESS_CODE)
    if sign is None:
        if not is_error:
            # An unsigned success could come from anyone on the path: never trust it.
            raise AlipaySignatureError(f"{method}: unsigned response")
    elif not rsa2_verify(content, sign, alipay_public_key):
        raise AlipaySignatureError(f"{method}: response signature does not verify")
    if is_error:
        raise AlipayError(
            str(body.get("code", "")),
            str(body.get("msg", "")),
            body.get("sub_code"),
            body.get("sub_msg"),
            method=method,
            verified=sign is not None,
        )
    return body


# -- notifications ----------------------------------------------------------------------
def verify_notification(
    params: Mapping[str, str], alipay_public_key: PublicKeyLike, app_id: str
) -> bool:
    """True if an asynchronous notification is signed by Alipay and addressed to ``app_id``.

    ``sign`` and ``sign_type`` are both left out of the canonical string (Alipay's
    rule for notifications). Amount and trade number are the caller's to check
    against its own records (R-PAY-7).
    """
    sign = params.get("sign")
    if not sign or params.get("app_id") != app_id:
        return False
    if params.get("sign_type", "RSA2") != "RSA2":
        return False
    return rsa2_verify(
        canonical_string(params, exclude=("sign", "sign_type")), sign, alipay_public_key
    )


def parse_trade_notification(params: Mapping[str, str]) -> TradeNotification:
    """The fields of a ``trade_status_sync`` notification (call ``verify_notification`` first)."""
    try:
        return TradeNotification(
            notify_id=params["notify_id"],
            app_id=params["app_id"],
            out_trade_no=params["out_trade_no"],
            trade_no=params["trade_no"],
            trade_status=params["trade_status"],
            total_amount_fen=yuan_to_fen(params["total_amount"]),
            buyer_id=params.get("buyer_id") or None,
            paid_at=_parse_time(params.get("gmt_payment")),
        )
    except KeyError as exc:
        raise ValueError(f"notification lacks {exc.args[0]}") from exc


# -- the client -------------------------------------------------------------------------
def _str(body: Mapping[str, Any], key: str, method: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise AlipayTransportError(f"{method}: response lacks {key}")
    return str(value)


class AlipayClient:
    """Calls gateway.do with signed requests and verifies every answer.

    ``http`` is injected (one pooled client per process, closed by its owner);
    ``timeout_s`` bounds each call as a whole, connect to last byte.
    """

    def __init__(
        self,
        *,
        gateway_url: str,
        app_id: str,
        app_private_key_pem: str,
        alipay_public_key_pem: str,
        http: httpx.AsyncClient,
        timeout_s: float = 5.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.gateway_url = gateway_url
        self.app_id = app_id
        # Parsed once: loading a PEM costs more than a signature.
        self._private_key = load_private_key(app_private_key_pem)
        self._alipay_public_key = load_public_key(alipay_public_key_pem)
        self._http = http
        self._timeout_s = timeout_s

    async def call(
        self,
        method: str,
        biz_content: Mapping[str, Any] | None = None,
        *,
        notify_url: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One signed gateway.do call; the verified response object, or a typed error."""
        params = build_request_params(
            app_id=self.app_id,
            method=method,
            private_key=self._private_key,
            biz_content=biz_content,
            notify_url=notify_url,
            extra=extra,
        )
        try:
            # httpx's timeout is per phase; asyncio.timeout makes it one deadline for the call.
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(
                    self.gateway_url,
                    data=params,
                    headers={"Accept": "application/json"},
                    timeout=httpx.Timeout(self._timeout_s),
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise AlipayTransportError(f"{method}: timed out", timed_out=True) from exc
        except httpx.HTTPError as exc:
            raise AlipayTransportError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise AlipayTransportError(f"{method}: HTTP {response.status_code}")
        try:
            # We asked for charset=utf-8; decode as such whatever the Content-Type says.
            raw = response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AlipayTransportError(f"{method}: response is not UTF-8") from exc
        return parse_gateway_response(raw, method, self._alipay_public_key)

    async def oauth_token(self, auth_code: str) -> OAuthToken:
        """Exchange a mini-program ``auth_code`` for the user id (``alipay.system.oauth.token``)."""
        method = "alipay.system.oauth.token"
        body = await self.call(
            method, extra={"grant_type": "authorization_code", "code": auth_code}
        )
        try:
            expires_in = int(body.get("expires_in", 0))
        except (TypeError, ValueError) as exc:
            raise AlipayTransportError(f"{method}: bad expires_in") from exc
        return OAuthToken(
            user_id=_str(body, "user_id", method),
            access_token=_str(body, "access_token", method),
            expires_in=expires_in,
            refresh_token=body.get("refresh_token") or None,
        )

    async def trade_create(
        self,
        out_trade_no: str,
        total_amount_fen: int,
        subject: str,
        buyer_id: str,
        notify_url: str | None = None,
    ) -> str:
        """Create a mini-program (JSAPI) trade; returns Alipay's ``trade_no`` for my.tradePay."""
        method = "alipay.trade.create"
        body = await self.call(
            method,
            {
                "out_trade_no": out_trade_no,
                "total_amount": fen_to_yuan(total_amount_fen),
                "subject": subject,
                "buyer_id": buyer_id,
                "product_code": "JSAPI_PAY",
            },
            notify_url=notify_url,
        )
        return _str(body, "trade_no", method)

    async def trade_query(self, out_trade_no: str) -> TradeStatus:
        """A trade's state; raises ``AlipayError`` with ``not_found`` if Alipay never saw it."""
        method = "alipay.trade.query"
        body = await self.call(method, {"out_trade_no": out_trade_no})
        try:
            total = yuan_to_fen(_str(body, "total_amount", method))
        except ValueError as exc:
            raise AlipayTransportError(f"{method}: bad total_amount") from exc
        return TradeStatus(
            trade_no=_str(body, "trade_no", method),
            trade_status=_str(body, "trade_status", method),
            total_amount_fen=total,
            out_trade_no=str(body.get("out_trade_no") or out_trade_no),
            buyer_user_id=body.get("buyer_user_id") or None,
            paid_at=_parse_time(body.get("send_pay_date")),
        )

    async def trade_refund(
        self,
        out_trade_no: str,
        refund_amount_fen: int,
        out_request_no: str,
        refund_reason: str | None = None,
    ) -> RefundResult:
        """Refund (part of) a paid trade; ``out_request_no`` makes a retry idempotent."""
        method = "alipay.trade.refund"
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "refund_amount": fen_to_yuan(refund_amount_fen),
            "out_request_no": out_request_no,
        }
        if refund_reason:
            biz["refund_reason"] = refund_reason
        body = await self.call(method, biz)
        try:
            refund_fee = yuan_to_fen(_str(body, "refund_fee", method))
        except ValueError as exc:
            raise AlipayTransportError(f"{method}: bad refund_fee") from exc
        return RefundResult(
            trade_no=_str(body, "trade_no", method),
            out_trade_no=str(body.get("out_trade_no") or out_trade_no),
            out_request_no=out_request_no,
            refund_fee_fen=refund_fee,
            fund_change=body.get("fund_change") == "Y",
            refunded_at=_parse_time(body.get("gmt_refund_pay")),
        )

    async def certify_initialize(
        self,
        outer_order_no: str,
        cert_name: str,
        cert_no: str,
        biz_code: str = "FACE",
        return_url: str | None = None,
    ) -> str:
        """Start a face verification of a named person; returns the ``certify_id``."""
        method = "alipay.user.certify.open.initialize"
        biz: dict[str, Any] = {
            "outer_order_no": outer_order_no,
            "biz_code": biz_code,
            "identity_param": {
                "identity_type": "CERT_INFO",
                "cert_type": "IDENTITY_CARD",
                "cert_name": cert_name,
                "cert_no": cert_no,
            },
        }
        if return_url:
            biz["merchant_config"] = {"return_url": return_url}
        body = await self.call(method, biz)
        return _str(body, "certify_id", method)

    def certify_url(self, certify_id: str) -> str:
        """The signed ``alipay.user.certify.open.certify`` page URL the person opens.

        A page API: no call is made here; Alipay checks the signature when the
        URL is opened (GET), so it is signed exactly like a POST.
        """
        params = build_request_params(
            app_id=self.app_id,
            method="alipay.user.certify.open.certify",
            private_key=self._private_key,
            biz_content={"certify_id": certify_id},
        )
        separator = "&" if "?" in self.gateway_url else "?"
        return self.gateway_url + separator + urllib.parse.urlencode(params)

    async def certify_query(self, certify_id: str) -> CertifyOutcome:
        """Whether the verification passed ("T"), failed ("F") or has no result yet."""
        body = await self.call("alipay.user.certify.open.query", {"certify_id": certify_id})
        passed = body.get("passed")
        if isinstance(passed, list):  # some gateways wrap it: ["T"]
            passed = passed[0] if passed else None
        if passed == "T":
            return CertifyOutcome.PASSED
        if passed == "F":
            return CertifyOutcome.FAILED
        return CertifyOutcome.PENDING
