"""A fake Alibaba Cloud SMS endpoint (``SendSms``, API 2017-05-25) that checks signatures,
for the tests of the follow service's ``AliyunSmsSender``.

It is a small ASGI app served by uvicorn in a background thread on a loopback port (a free
one unless ``port`` is given), like :mod:`cqdev.fake_alipay`. Point the official SDK at it
with the endpoint ``http://127.0.0.1:PORT`` (``FakeSms.endpoint``; the adapter takes the
protocol from the URL) and the fake's AccessKey pair.

What it checks, as Alibaba Cloud does for the SDK (``alibabacloud-tea-openapi``), which
signs with the V3 scheme, ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,
SignedHeaders=<names>,Signature=<hex>``:

* the AccessKey id is known (else 404 ``InvalidAccessKeyId.NotFound``);
* ``x-acs-content-sha256`` is the SHA-256 of the body, and ``host`` and every ``x-acs-*``
  header are signed (else 400 ``IncompleteSignature``);
* the signature: HMAC-SHA256 under the AccessKey secret of ``ACS3-HMAC-SHA256\\n`` +
  hex SHA-256 of the canonical request (method, path, the query sorted by name with values
  percent-encoded, the signed headers lower-cased, sorted and trimmed, their names, the
  payload hash), recomputed from the bytes received (else 400 ``SignatureDoesNotMatch``);
* ``x-acs-date`` within 15 minutes of the fake's clock (``InvalidTimeStamp.Expired``) and
  ``x-acs-signature-nonce`` never seen before (``SignatureNonceUsed``);
* the action and version headers (``SendSms``, ``2017-05-25``), then the business checks
  that Alibaba answers with HTTP 200 and an ``isv.*`` code: mainland mobile numbers,
  a known signature name and template when the fake was given lists of them, and a
  ``TemplateParam`` that is a JSON object.

Errors have the provider's shape: ``{"RequestId", "HostId", "Code", "Message",
"Recommend"}``; success is ``{"RequestId", "Message": "OK", "BizId", "Code": "OK"}``.

Knobs: ``fail_next(code, ...)`` answers the next call(s) with that code (HTTP 200 like a
business refusal unless ``status`` says otherwise); ``delay_next(seconds)`` makes the next
call(s) take effect but answer late. ``messages`` lists the accepted messages, ``calls``
every request with the code it got. ``GET /_fake/health`` answers 200 once serving;
``GET /_fake/messages`` lists the accepted messages as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cqdev.threaded_server import ThreadedServer

__all__ = [
    "ACCESS_KEY_ID",
    "FakeSms",
    "FakeSmsMessage",
    "RecordedSmsCall",
    "canonical_request",
    "sign_v3",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ACCESS_KEY_ID: Final = "LTAI5tFakeSmsAccessKey01"
ALGORITHM: Final = "ACS3-HMAC-SHA256"
HOST_ID: Final = "dysmsapi.aliyuncs.com"
MAX_SKEW: Final = timedelta(minutes=15)
_MAX_BODY: Final = 64 * 1024
_MOBILE: Final = re.compile(r"(?:\+?86)?1[3-9]\d{9}")
_TEMPLATE: Final = re.compile(r"SMS_\d{1,20}")
_AUTH: Final = re.compile(
    ALGORITHM + r" Credential=([^,]*),SignedHeaders=([^,]*),Signature=([0-9a-f]*)"
)


@dataclass(frozen=True)
class FakeSmsMessage:
    """One message the fake accepted."""

    biz_id: str
    request_id: str
    phone_numbers: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    access_key_id: str
    received_at: datetime


@dataclass(frozen=True)
class RecordedSmsCall:
    """One request, accepted or not, with the code it was answered with."""

    action: str
    code: str
    status: int
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Injected:
    times: int
    delay_s: float = 0.0
    error: tuple[int, str, str] | None = None  # (status, code, message)


@dataclass
class _RejectError(Exception):
    status: int
    code: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, list[str]],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    """The V3 canonical request, as the SDK builds it (``alibabacloud_tea_openapi.utils``):
    query sorted by name with values percent-encoded (``~`` kept), each signed header
    ``name:value`` (several values trimmed, sorted, joined by commas)."""
    canon_query = "&".join(
        f"{name}={urllib.parse.quote(value, safe='~')}" for name, value in sorted(query)
    )
    canon_headers = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, [])))}\n"
        for name in signed_headers
    )
    return "\n".join(
        [method, path or "/", canon_query, canon_headers, ";".join(signed_headers), payload_hash]
    )


def sign_v3(secret: str, canonical: str) -> tuple[str, str]:
    """(string to sign, hex signature) of a canonical request under ``secret``."""
    to_sign = f"{ALGORITHM}\n{_sha256_hex(canonical.encode())}"
    return to_sign, hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


class FakeSms(ThreadedServer):
    """The fake endpoint; start it with ``start()`` or ``with FakeSms() as fake``."""

    def __init__(
        self,
        *,
        access_key_id: str = ACCESS_KEY_ID,
        access_key_secret: str | None = None,
        sign_names: Collection[str] | None = None,
        template_codes: Collection[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret or secrets.token_urlsafe(24)
        self._keys = {access_key_id: self.access_key_secret}
        self.sign_names = frozenset(sign_names) if sign_names is not None else None
        self.template_codes = frozenset(template_codes) if template_codes is not None else None
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._nonces: dict[str, float] = {}  # nonce -> monotonic time first seen
        self._injected: list[_Injected] = []
        self.messages: list[FakeSmsMessage] = []
        self.calls: list[RecordedSmsCall] = []

    # -- lifecycle --------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The value for ``ALIYUN_SMS_ENDPOINT`` (a URL: the adapter then speaks HTTP)."""
        return self.url

    # -- test controls ----------------------------------------------------------------
    def fail_next(
        self,
        code: str = "isv.BUSINESS_LIMIT_CONTROL",
        message: str = "触发分钟级流控Permits:1",
        *,
        status: int = 200,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls with ``code`` (nothing is accepted)."""
        with self._lock:
            self._injected.append(_Injected(times, error=(status, code, message)))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls take effect but answer ``seconds`` late."""
        with self._lock:
            self._injected.append(_Injected(times, delay_s=seconds))

    def clear_injections(self) -> None:
        with self._lock:
            self._injected.clear()

    def messages_to(self, phone: str) -> list[FakeSmsMessage]:
        """Accepted messages whose ``PhoneNumbers`` include ``phone``."""
        with self._lock:
            return [m for m in self.messages if phone in m.phone_numbers.split(",")]

    # -- the endpoint -----------------------------------------------------------------
    def _take_injection(self) -> _Injected | None:
        if not self._injected:
            return None
        first = self._injected[0]
        first.times -= 1
        if first.times <= 0:
            self._injected.pop(0)
        return first

    def _check_signature(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, list[str]],
        body: bytes,
    ) -> str:
        """The AccessKey id of a correctly signed request; raises ``_RejectError``."""
        auth = _one(headers, "authorization")
        match = _AUTH.fullmatch(auth)
        if match is None:
            raise _RejectError(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        key_id, signed, signature = match.groups()
        secret = self._keys.get(key_id)
        if secret is None:
            raise _RejectError(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        signed_headers = signed.split(";")
        payload_hash = _one(headers, "x-acs-content-sha256")
        if payload_hash != _sha256_hex(body):
            raise _RejectError(
                400, "IncompleteSignature", "x-acs-content-sha256 does not match the body."
            )
        required = {"host"} | {name for name in headers if name.startswith("x-acs-")}
        if signed_headers != sorted(signed_headers) or not required <= set(signed_headers):
            raise _RejectError(
                400, "IncompleteSignature", "host and every x-acs-* header must be signed."
            )
        canonical = canonical_request(method, path, query, headers, signed_headers, payload_hash)
        to_sign, expected = sign_v3(secret, canonical)
        if not hmac.compare_digest(expected, signature):
            raise _RejectError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature does not match our calculation. server string to sign is:"
                + to_sign,
            )
        return key_id

    def _check_freshness(self, headers: dict[str, list[str]]) -> None:
        try:
            sent = datetime.strptime(_one(headers, "x-acs-date"), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _RejectError(
                400, "MissingParameter.x-acs-date", "x-acs-date is mandatory for this action."
            ) from None
        if abs(self._clock() - sent.replace(tzinfo=UTC)) > MAX_SKEW:
            raise _RejectError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        nonce = _one(headers, "x-acs-signature-nonce")
        if not nonce:
            raise _RejectError(
                400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action."
            )
        now = time.monotonic()
        # Forget nonces older than the skew window: a replay that old fails on the date.
        for old in [n for n, at in self._nonces.items() if now - at > MAX_SKEW.total_seconds()]:
            del self._nonces[old]
        if nonce in self._nonces:
            raise _RejectError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._nonces[nonce] = now

    def _send_sms(self, query: dict[str, str], key_id: str, request_id: str) -> FakeSmsMessage:
        phones = query.get("PhoneNumbers", "")
        if not phones:
            raise _RejectError(
                400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action."
            )
        if not all(_MOBILE.fullmatch(p) for p in phones.split(",")):
            raise _RejectError(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        sign_name = query.get("SignName", "")
        if not sign_name:
            raise _RejectError(400, "MissingSignName", "SignName is mandatory for this action.")
        if self.sign_names is not None and sign_name not in self.sign_names:
            raise _RejectError(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = query.get("TemplateCode", "")
        if not template:
            raise _RejectError(
                400, "MissingTemplateCode", "TemplateCode is mandatory for this action."
            )
        if not _TEMPLATE.fullmatch(template) or (
            self.template_codes is not None and template not in self.template_codes
        ):
            raise _RejectError(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            params = json.loads(query.get("TemplateParam", "{}"))
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise _RejectError(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        return FakeSmsMessage(
            biz_id=f"{secrets.randbelow(10**18):018d}^0",
            request_id=request_id,
            phone_numbers=phones,
            sign_name=sign_name,
            template_code=template,
            params={str(k): str(v) for k, v in params.items()},
            access_key_id=key_id,
            received_at=self._clock(),
        )

    async def _endpoint(
        self, method: str, path: str, raw_query: str, headers: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str]]:
        request_id = str(uuid.uuid4()).upper()
        query_pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        if method == "POST" and body and "form" in _one(headers, "content-type"):
            # An SDK may also send parameters as a form body; they are not in the signed
            # query but the body hash covers them.
            query_pairs += urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        query = dict(query_pairs)
        action = _one(headers, "x-acs-action")
        delay = 0.0
        try:
            with self._lock:
                try:
                    key_id = self._check_signature(
                        method,
                        path,
                        urllib.parse.parse_qsl(raw_query, keep_blank_values=True),
                        headers,
                        body,
                    )
                    self._check_freshness(headers)
                    if action != "SendSms":
                        raise _RejectError(
                            404,
                            "InvalidAction.NotFound",
                            "Specified api is not found, please check your url and method.",
                        )
                    if _one(headers, "x-acs-version") != "2017-05-25":
                        raise _RejectError(
                            400, "InvalidVersion", "Specified parameter Version is not valid."
                        )
                    injected = self._take_injection()
                    if injected is not None and injected.error is not None:
                        raise _RejectError(*injected.error)
                    if injected is not None:
                        delay = injected.delay_s
                    message = self._send_sms(query, key_id, request_id)
                except _RejectError as reject:
                    self.calls.append(
                        RecordedSmsCall(action, reject.code, reject.status, query, _flat(headers))
                    )
                    raise
                self.messages.append(message)
                self.calls.append(RecordedSmsCall(action, "OK", 200, query, _flat(headers)))
        except _RejectError as reject:
            error = {
                "RequestId": request_id,
                "HostId": HOST_ID,
                "Code": reject.code,
                "Message": reject.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={reject.code}&product=Dysmsapi&requestId={request_id}",
            }
            if reject.status == 200:
                # Business refusals of SendSms carry no HostId / Recommend.
                error = {"RequestId": request_id, "Code": reject.code, "Message": reject.message}
            return reject.status, error
        await self._sleep(delay)
        return 200, {
            "RequestId": request_id,
            "Message": "OK",
            "BizId": message.biz_id,
            "Code": "OK",
        }

    async def _sleep(self, seconds: float) -> None:
        # Waits on the stop event, so that stop() never waits for a long injected delay.
        if seconds <= 0 or self._async_stop is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._async_stop.wait(), seconds)

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
                await _respond(send, 413, {"Code": "RequestTooLarge", "Message": "too large"})
                return
            if not message.get("more_body"):
                break
        headers: dict[str, list[str]] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("utf-8"))
        path, verb = scope["path"], scope["method"]
        raw_query = scope.get("query_string", b"").decode("latin-1")
        if path == "/_fake/health" and verb == "GET":
            await _respond(send, 200, {"status": "ok"})
        elif path == "/_fake/messages" and verb == "GET":
            with self._lock:
                listed = [
                    {**asdict(m), "received_at": m.received_at.isoformat()} for m in self.messages
                ]
            await _respond(send, 200, {"messages": listed})
        elif path == "/" and verb in ("GET", "POST"):
            status, payload = await self._endpoint(verb, path, raw_query, headers, body)
            await _respond(send, status, payload)
        else:
            await _respond(send, 404, {"Code": "InvalidAction.NotFound", "Message": "not found"})


def _one(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0].strip() if values else ""


def _flat(headers: dict[str, list[str]]) -> dict[str, str]:
    return {name: ",".join(values) for name, values in headers.items() if name != "authorization"}


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json;charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
