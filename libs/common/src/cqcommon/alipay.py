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
* The daily trade bill: ``alipay.data.dataservice.bill.downloadurl.query`` answers a
  short-lived URL (Alipay: 30 s) whose token is the only credential; the download
  itself is a plain, unsigned GET of a zip holding GBK CSV files (``#`` comment lines,
  a header row, one row per trade and per refund). Its integrity rests on the signed
  answer that handed out the URL and on TLS, as at Alipay.

Money is integer fen inside the system; Alipay amounts are yuan strings with two
decimals, converted here exactly (no floats). Nothing connects at import time:
the HTTP client is injected and every call (bill download included) has the one
deadline the client was built with (``ALIPAY_TIMEOUT_S`` in the services).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import enum
import io
import json
import re
import textwrap
import urllib.parse
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "BILL_KIND_PAYMENT",
    "BILL_KIND_REFUND",
    "BILL_NOT_EXIST",
    "NOTIFY_ACK",
    "SUCCESS_CODE",
    "TRADE_NOT_EXIST",
    "TRADE_STATUS_ERROR",
    "AlipayAdapterError",
    "AlipayClient",
    "AlipayError",
    "AlipaySignatureError",
    "AlipayTransportError",
    "CertifyOutcome",
    "OAuthToken",
    "RefundResult",
    "TradeBillLine",
    "TradeBillRow",
    "TradeCloseResult",
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
    "parse_trade_bill",
    "parse_trade_notification",
    "public_key_pem",
    "response_key",
    "rsa2_sign",
    "rsa2_verify",
    "sign_params",
    "summarize_trade_bill",
    "verify_notification",
    "verify_notification_signature",
    "yuan_to_fen",
]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
SUCCESS_CODE: Final = "10000"
#: The body a notification endpoint must answer once it has recorded the notification;
#: anything else makes Alipay retry (API.md).
NOTIFY_ACK: Final = "success"
#: ``sub_code`` of ``alipay.trade.query/close/refund`` for an unknown ``out_trade_no``.
TRADE_NOT_EXIST: Final = "ACQ.TRADE_NOT_EXIST"
#: ``sub_code`` of ``alipay.trade.close/refund`` when the trade's state forbids the call
#: (closing a paid or an already closed trade).
TRADE_STATUS_ERROR: Final = "ACQ.TRADE_STATUS_ERROR"
#: ``sub_code`` of the bill URL query for a bill that does not exist (yet).
BILL_NOT_EXIST: Final = "isp.bill_not_exist"
#: Largest bill we unpack: a day's CSV for a city's fines is a few MB; anything far bigger
#: is a broken (or hostile) file, not a statement.
MAX_BILL_BYTES: Final = 64 * 1024 * 1024
#: 业务类型 of the trade bill's rows.
BILL_KIND_PAYMENT: Final = "交易"
BILL_KIND_REFUND: Final = "退款"
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
    #: Whose trade it is; the payment service compares it with ALIPAY_SELLER_ID (R-PAY-7).
    seller_id: str | None = None


@dataclass(frozen=True, slots=True)
class TradeCloseResult:
    """Result of ``alipay.trade.close``: the trade that is now ``TRADE_CLOSED``."""

    out_trade_no: str
    trade_no: str | None


@dataclass(frozen=True, slots=True)
class TradeBillRow:
    """One row of the trade bill's detail list (业务明细): a payment or a refund.

    ``amount_fen`` is signed as Alipay writes it: a refund row is negative.
    ``finished_at`` is the payment's (or the refund's) completion time, Asia/Shanghai.
    """

    trade_no: str
    out_trade_no: str
    kind: str  # "交易" (payment) | "退款" (refund)
    amount_fen: int
    created_at: datetime | None
    finished_at: datetime | None
    out_request_no: str | None = None

    @property
    def is_refund(self) -> bool:
        """A refund row (业务类型 退款)."""
        return self.kind == BILL_KIND_REFUND


@dataclass(frozen=True, slots=True)
class TradeBillLine:
    """A trade paid on the bill's day, with the refunds of it that the same bill lists."""

    trade_no: str
    out_trade_no: str
    total_amount_fen: int
    refunded_fen: int
    paid_at: datetime


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
    if params.get("app_id") != app_id:
        return False
    return verify_notification_signature(params, alipay_public_key)


def verify_notification_signature(
    params: Mapping[str, str], alipay_public_key: PublicKeyLike
) -> bool:
    """True if an asynchronous notification carries Alipay's RSA2 signature, whoever it is for.

    For a caller that checks ``app_id`` (and ``seller_id``, amount...) itself, against its
    own records, and wants to tell a forgery from a genuine notice meant for someone else.
    """
    sign = params.get("sign")
    if not sign or params.get("sign_type", "RSA2") != "RSA2":
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
            seller_id=params.get("seller_id") or None,
        )
    except KeyError as exc:
        raise ValueError(f"notification lacks {exc.args[0]}") from exc


# -- the trade bill -----------------------------------------------------------------------
#: Header names of the detail list (业务明细) that we read; other columns are ignored.
_COL_TRADE_NO: Final = "支付宝交易号"
_COL_OUT_TRADE_NO: Final = "商户订单号"
_COL_KIND: Final = "业务类型"
_COL_CREATED: Final = "创建时间"
_COL_FINISHED: Final = "完成时间"
_COL_AMOUNT: Final = "订单金额（元）"
_COL_REQUEST_NO: Final = "退款批次号/请求号"
_SIGNED_YUAN_RE: Final = re.compile(r"(-?)(\d+(?:\.\d{1,2})?)")


def _signed_fen(text: str) -> int:
    match = _SIGNED_YUAN_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not an amount: {text!r}")
    fen = yuan_to_fen(match.group(2))
    return -fen if match.group(1) else fen


def _member_name(info: zipfile.ZipInfo) -> str:
    # Alipay's zips store GBK names without the UTF-8 flag; zipfile decoded them as cp437.
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _bill_csv_text(data: bytes) -> str:
    """The detail CSV (not the summary, 汇总) of a bill zip, decoded from GBK."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError("the bill is not a zip file") from exc
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and _member_name(info).lower().endswith(".csv")
        ]
        details = [info for info in members if "汇总" not in _member_name(info)]
        if len(details) != 1:
            raise ValueError(f"the bill holds {len(details)} detail CSV files, expected one")
        with archive.open(details[0]) as member:
            raw = member.read(MAX_BILL_BYTES + 1)  # bounded: a zip can inflate enormously
    if len(raw) > MAX_BILL_BYTES:
        raise ValueError("the bill is larger than MAX_BILL_BYTES")
    # GB18030 is a superset of GBK: every GBK file decodes the same, nothing is lost.
    return raw.decode("gb18030")


def parse_trade_bill(data: bytes) -> list[TradeBillRow]:
    """The detail rows of a downloaded trade bill (the zip's 业务明细 CSV).

    Lines starting with ``#`` (title, account, period, totals) are skipped; the first
    other line is the header, found by name, so extra or reordered columns do not matter.
    Cells are stripped (Alipay pads them with tabs to keep spreadsheets from turning
    trade numbers into floats). Raises ``ValueError`` on anything it cannot read.
    """
    # One CSV reader over the whole text, so that a quoted cell may hold a line break.
    records = [
        record
        for record in csv.reader(io.StringIO(_bill_csv_text(data), newline=""))
        if any(cell.strip() for cell in record) and not record[0].startswith("#")
    ]
    if not records:
        raise ValueError("the bill has no header row")
    header = [cell.strip() for cell in records[0]]
    needed = (_COL_TRADE_NO, _COL_OUT_TRADE_NO, _COL_KIND, _COL_FINISHED, _COL_AMOUNT)
    missing = [name for name in needed if name not in header]
    if missing:
        raise ValueError(f"the bill lacks the columns {missing}")
    col = {name: header.index(name) for name in header}
    rows: list[TradeBillRow] = []
    for number, raw_row in enumerate(records[1:], start=2):
        cells = [cell.strip() for cell in raw_row]
        if len(cells) < len(header):
            raise ValueError(f"bill row {number} has {len(cells)} cells, expected {len(header)}")

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[col[name]] if name in col else ""

        rows.append(
            TradeBillRow(
                trade_no=cell(_COL_TRADE_NO),
                out_trade_no=cell(_COL_OUT_TRADE_NO),
                kind=cell(_COL_KIND),
                amount_fen=_signed_fen(cell(_COL_AMOUNT)),
                created_at=_parse_time(cell(_COL_CREATED)),
                finished_at=_parse_time(cell(_COL_FINISHED)),
                out_request_no=cell(_COL_REQUEST_NO) or None,
            )
        )
    return rows


def summarize_trade_bill(rows: Iterable[TradeBillRow]) -> list[TradeBillLine]:
    """One line per trade the bill shows paid, with the refunds of it the bill lists.

    A refund row of a trade paid on another day has no line here (that trade's line is in
    its own day's bill); a payment row without a completion time is malformed.
    """
    lines: dict[str, TradeBillLine] = {}
    refunds: dict[str, int] = {}
    for row in rows:
        if row.kind == BILL_KIND_PAYMENT:
            if row.finished_at is None:
                raise ValueError(f"payment row {row.trade_no} has no completion time")
            lines[row.trade_no] = TradeBillLine(
                trade_no=row.trade_no,
                out_trade_no=row.out_trade_no,
                total_amount_fen=row.amount_fen,
                refunded_fen=0,
                paid_at=row.finished_at,
            )
        elif row.is_refund:
            refunds[row.trade_no] = refunds.get(row.trade_no, 0) + abs(row.amount_fen)
    return sorted(
        (
            TradeBillLine(
                trade_no=line.trade_no,
                out_trade_no=line.out_trade_no,
                total_amount_fen=line.total_amount_fen,
                refunded_fen=refunds.get(line.trade_no, 0),
                paid_at=line.paid_at,
            )
            for line in lines.values()
        ),
        key=lambda line: (line.paid_at, line.trade_no),
    )


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
        response = await self._exchange(
            method,
            self._http.build_request(
                "POST",
                self.gateway_url,
                data=params,
                headers={"Accept": "application/json"},
                timeout=httpx.Timeout(self._timeout_s),
            ),
        )
        try:
            # We asked for charset=utf-8; decode as such whatever the Content-Type says.
            raw = response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AlipayTransportError(f"{method}: response is not UTF-8") from exc
        return parse_gateway_response(raw, method, self._alipay_public_key)

    async def _exchange(self, what: str, request: httpx.Request) -> httpx.Response:
        """Send one request under the client's deadline; a 200 response or a transport error."""
        try:
            # httpx's timeout is per phase; asyncio.timeout makes it one deadline for the call.
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.send(request)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise AlipayTransportError(f"{what}: timed out", timed_out=True) from exc
        except httpx.HTTPError as exc:
            raise AlipayTransportError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise AlipayTransportError(f"{what}: HTTP {response.status_code}")
        return response

    def verify_notification_signature(self, params: Mapping[str, str]) -> bool:
        """Whether a notification is signed with the Alipay public key this client trusts.

        Only the signature: ``app_id``, ``seller_id`` and the amount are for the caller to
        compare with its own records (R-PAY-7), so that it can say which one was wrong.
        """
        return verify_notification_signature(params, self._alipay_public_key)

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
        *,
        time_expire: datetime | None = None,
        seller_id: str | None = None,
    ) -> str:
        """Create a mini-program (JSAPI) trade; returns Alipay's ``trade_no`` for my.tradePay.

        ``time_expire`` is the absolute moment Alipay closes the trade unpaid (sent as
        ``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai; an aware datetime in any zone is
        converted). ``seller_id`` names the merchant who collects; Alipay refuses a seller
        the app may not collect for, and otherwise defaults it to the app's own merchant.
        """
        method = "alipay.trade.create"
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "total_amount": fen_to_yuan(total_amount_fen),
            "subject": subject,
            "buyer_id": buyer_id,
            "product_code": "JSAPI_PAY",
        }
        if time_expire is not None:
            if time_expire.tzinfo is None:
                raise ValueError("time_expire must be timezone-aware")
            biz["time_expire"] = format_timestamp(time_expire)
        if seller_id:
            biz["seller_id"] = seller_id
        body = await self.call(method, biz, notify_url=notify_url)
        return _str(body, "trade_no", method)

    async def trade_close(self, out_trade_no: str) -> TradeCloseResult:
        """Close an unpaid trade (``alipay.trade.close``) so it can no longer be paid.

        Alipay answers ``ACQ.TRADE_STATUS_ERROR`` when the trade is not waiting for
        payment (paid, or closed already) and ``ACQ.TRADE_NOT_EXIST`` for a trade it never
        created; both come as ``AlipayError``.
        """
        method = "alipay.trade.close"
        body = await self.call(method, {"out_trade_no": out_trade_no})
        return TradeCloseResult(
            out_trade_no=str(body.get("out_trade_no") or out_trade_no),
            trade_no=str(body["trade_no"]) if body.get("trade_no") else None,
        )

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

    async def bill_download_url(self, day: date, bill_type: str = "trade") -> str:
        """The download URL of a day's bill (``alipay.data.dataservice.bill.downloadurl.query``).

        ``trade`` is the bill of trades taken through the trade API. Alipay produces a
        day's bill the next morning and refuses today's; the URL works for 30 seconds.
        """
        method = "alipay.data.dataservice.bill.downloadurl.query"
        body = await self.call(
            method, {"bill_type": bill_type, "bill_date": day.strftime("%Y-%m-%d")}
        )
        return _str(body, "bill_download_url", method)

    async def download_bill(self, url: str) -> bytes:
        """The bytes behind a bill URL: an unsigned GET, under the client's deadline."""
        response = await self._exchange(
            "bill download",
            self._http.build_request("GET", url, timeout=httpx.Timeout(self._timeout_s)),
        )
        if len(response.content) > MAX_BILL_BYTES:
            raise AlipayTransportError("bill download: larger than MAX_BILL_BYTES")
        return response.content

    async def trade_bill(self, day: date) -> list[TradeBillRow]:
        """The rows of a day's trade bill: the URL query, the download and the parse.

        Each of the two HTTP exchanges has the client's deadline. A file that is not the
        zip of one detail CSV raises ``AlipayTransportError`` (no usable answer).
        """
        data = await self.download_bill(await self.bill_download_url(day))
        try:
            return parse_trade_bill(data)
        except ValueError as exc:
            raise AlipayTransportError(f"bill download: {exc}") from exc

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
