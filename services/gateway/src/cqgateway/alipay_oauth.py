"""Alipay login adapters: exchange a mini-program ``auth_code`` for the Alipay user id.

The gateway only needs "who is this" from ``alipay.system.oauth.token``; the port is the
one-method ``AlipayOAuth`` Protocol. ``SandboxAlipayOAuth`` accepts SANDBOX.md's
``sandbox:<alipay_user_id>`` codes without any network call; ``OpenPlatformAlipayOAuth``
wraps the shared open-platform client (``cqcommon.alipay``), imported lazily so the
gateway does not depend on it until it is configured for production.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from cqcommon.errors import ALIPAY_UNAVAILABLE, AUTH_CODE_INVALID, DomainError

if TYPE_CHECKING:
    import httpx
    from cqcommon.settings import Settings

# Alipay user ids are 16 digits (real ones start with 2088).
_SANDBOX_CODE_RE = re.compile(r"^sandbox:(\d{16})$")


class AlipayOAuth(Protocol):
    """Turns an ``auth_code`` into the Alipay user id it was issued for."""

    async def exchange(self, auth_code: str) -> str:
        """The Alipay user id; raises ``DomainError`` (AUTH_CODE_INVALID, ALIPAY_UNAVAILABLE)."""
        ...


class SandboxAlipayOAuth:
    """Sandbox mode (R-SBX-1): ``sandbox:<16-digit alipay_user_id>`` logs in as that user."""

    async def exchange(self, auth_code: str) -> str:
        match = _SANDBOX_CODE_RE.match(auth_code)
        if match is None:
            raise DomainError(AUTH_CODE_INVALID)
        return match.group(1)


class OpenPlatformAlipayOAuth:
    """Production: ``alipay.system.oauth.token`` through ``cqcommon.alipay.AlipayClient``."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        from cqcommon.alipay import AlipayClient  # lazy: only production needs the keys

        self._client = AlipayClient(
            gateway_url=settings.alipay_gateway_url,
            app_id=settings.alipay_app_id,
            app_private_key_pem=settings.alipay_app_private_key_pem,
            alipay_public_key_pem=settings.alipay_public_key_pem,
            http=http,
            timeout_s=settings.grpc_deadline_s,
        )

    async def exchange(self, auth_code: str) -> str:
        from cqcommon.alipay import AlipayError, AlipayTransportError

        try:
            token = await self._client.oauth_token(auth_code)
        except AlipayError as exc:
            # Alipay answered "no" (expired or reused code, wrong app): the user must retry.
            if exc.outcome_unknown:
                raise DomainError(ALIPAY_UNAVAILABLE, details={"retry_after_s": 2}) from exc
            raise DomainError(
                AUTH_CODE_INVALID, details={"alipay_sub_code": exc.sub_code or exc.code}
            ) from exc
        except AlipayTransportError as exc:
            raise DomainError(ALIPAY_UNAVAILABLE, details={"retry_after_s": 2}) from exc
        except Exception as exc:  # signature failures and the like: never log the user in
            raise DomainError(ALIPAY_UNAVAILABLE) from exc
        return token.user_id


def make_alipay_oauth(settings: Settings, http: httpx.AsyncClient) -> AlipayOAuth:
    """The adapter for this process: the sandbox one in sandbox mode, else the real one."""
    if settings.sandbox_mode:
        return SandboxAlipayOAuth()
    return OpenPlatformAlipayOAuth(settings, http)
