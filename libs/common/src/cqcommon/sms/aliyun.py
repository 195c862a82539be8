"""Alibaba Cloud SMS (``SendSms``, API 2017-05-25) on the official SDK: the production
``cqcommon.sms.SmsSender`` (R-SMS-3), used by the follow service (consent codes) and
payment (overdue notices).

The SDK (``alibabacloud-dysmsapi20170525`` on ``alibabacloud-tea-openapi``) signs each call
with the V3 scheme (``Authorization: ACS3-HMAC-SHA256 ...`` over the canonical request,
``x-acs-date`` and ``x-acs-signature-nonce``), and has an async method, used here, so no
thread is needed. Every call is bounded twice: the SDK's connect/read timeouts and an
``asyncio.timeout`` around the whole call (the SDK's read timeout is per socket read, not
for the call). The SDK retries nothing unless told to, and this adapter does not tell it:
a retried SendSms may deliver the code twice.

Failures become ``SmsUnavailableError`` carrying only the provider's code (``isv.*``,
``SignatureDoesNotMatch``, ``timeout`` ...). The SDK's own exception is dropped
(``from None``) and never logged: its message can quote the request, and the request holds
the code (Alibaba Cloud answers a bad signature with the string it signed, query
included).

``endpoint`` is a host (``dysmsapi.aliyuncs.com``, HTTPS) or a URL whose scheme picks the
protocol (``http://127.0.0.1:PORT`` for the local fake, ``cqdev.fake_sms``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions

from cqcommon.sms import SmsUnavailableError

log = logging.getLogger(__name__)

OK_CODE = "OK"
# What a provider error code looks like; anything else is not passed on (it could be text).
_CODE_SHAPE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """(protocol, host[:port]) of the endpoint setting: a bare host means HTTPS."""
    if "://" not in endpoint:
        return "https", endpoint.strip().rstrip("/")
    parts = urllib.parse.urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an SMS endpoint URL: {endpoint!r}")
    return parts.scheme, parts.netloc


class AliyunSmsSender:
    """``SmsSender`` on Alibaba Cloud SMS ``SendSms``."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        endpoint: str = "dysmsapi.aliyuncs.com",
        timeout_s: float = 5.0,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("Alibaba Cloud SMS needs an AccessKey id and secret")
        if not sign_name:
            raise ValueError("Alibaba Cloud SMS needs a signature name (SignName)")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        protocol, host = split_endpoint(endpoint)
        self._sign_name = sign_name
        self._timeout_s = timeout_s
        timeout_ms = max(1, int(timeout_s * 1000))
        # Building the client does no I/O: the static AccessKey is read at each call.
        self._client = Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=host,
                protocol=protocol,
                connect_timeout=timeout_ms,
                read_timeout=timeout_ms,
            )
        )
        self._runtime = RuntimeOptions(
            autoretry=False, connect_timeout=timeout_ms, read_timeout=timeout_ms
        )

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        """Send one templated SMS; the provider's BizId. Raises ``SmsUnavailableError``."""
        request = sms_models.SendSmsRequest(
            phone_numbers=phone,
            sign_name=self._sign_name,
            template_code=template_code,
            template_param=json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                response: Any = await self._client.send_sms_with_options_async(
                    request, self._runtime
                )
        except TimeoutError:
            log.warning(
                "SendSms timed out after %.1fs (template %s)", self._timeout_s, template_code
            )
            raise SmsUnavailableError("timeout") from None
        except Exception as exc:  # the SDK raises many kinds; each is "not sent"
            code = _provider_code(exc)
            log.warning("SendSms failed: %s (template %s)", code, template_code)
            raise SmsUnavailableError(code) from None
        body = getattr(response, "body", None)
        code = _safe_code(getattr(body, "code", None)) or "NoBody"
        if code != OK_CODE:
            log.warning(
                "SendSms refused: %s (template %s, request %s)",
                code,
                template_code,
                getattr(body, "request_id", None),
            )
            raise SmsUnavailableError(code)
        return str(getattr(body, "biz_id", None) or "")


def _provider_code(exc: BaseException) -> str:
    """The provider's error code of an SDK exception (its message is never used)."""
    code = _safe_code(getattr(exc, "code", None))
    if code and code != "None":
        return code
    inner = getattr(exc, "inner_exception", None)
    if isinstance(inner, BaseException) and inner is not exc:
        # Connection failures arrive wrapped: name the kind, not the text.
        return type(inner).__name__
    return type(exc).__name__


def _safe_code(code: object) -> str | None:
    return code if isinstance(code, str) and _CODE_SHAPE.fullmatch(code) else None
