"""The HTTP exchanges under ``cqcommon.alipay.AlipayClient``: one request, its status and
body, on an httpx client or on aiohttp.

Why two: the payment service calls ``alipay.trade.create`` for every payment, and the
httpx path (its client, auth and redirect layers over httpcore's pool) was about a fifth
of that service's CPU in the payment benchmark, several times what aiohttp spends on the
same exchange. The services that call Alipay on a hot path use
:class:`AiohttpAlipayHttp`; an ``httpx.AsyncClient`` (what the other callers and many
tests inject, event hooks and mock transports included) is wrapped in
:class:`HttpxAlipayHttp`, so both meet the same protocol and the same fake Alipay.

Both follow no redirect (an answer that is not 200 is no answer), honour the proxy
environment variables as httpx does by default, and report a timeout as ``TimeoutError``
and any other failure as :class:`HttpExchangeError`; the client turns both into
``AlipayTransportError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import aiohttp
import httpx

__all__ = ["AiohttpAlipayHttp", "AlipayHttp", "HttpExchangeError", "HttpxAlipayHttp"]


class HttpExchangeError(Exception):
    """The exchange failed without an answer (refused or dropped connection, bad TLS, …)."""


@runtime_checkable
class AlipayHttp(Protocol):
    """One HTTP exchange: ``(status, body)``; ``form`` is sent form-encoded."""

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> tuple[int, bytes]: ...


class HttpxAlipayHttp:
    """:class:`AlipayHttp` on an injected ``httpx.AsyncClient`` (closed by its owner)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> tuple[int, bytes]:
        request = self.client.build_request(
            method, url, data=form, headers=headers, timeout=httpx.Timeout(timeout_s)
        )
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise HttpExchangeError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content


class AiohttpAlipayHttp:
    """:class:`AlipayHttp` on an aiohttp session of its own, opened on first use (inside
    the running event loop, as aiohttp requires) and closed by :meth:`aclose`."""

    def __init__(self, *, connections: int = 100) -> None:
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                # HTTPS_PROXY and friends, as httpx honours them by default
                trust_env=True,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> tuple[int, bytes]:
        try:
            async with self._open().request(
                method,
                url,
                data=dict(form) if form is not None else None,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                return response.status, await response.read()
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            raise
        except aiohttp.ClientError as exc:
            raise HttpExchangeError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
