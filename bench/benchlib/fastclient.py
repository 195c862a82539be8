"""The HTTP client of the benchmarks' timed loops: aiohttp behind the few httpx-like
calls they make (``request`` → ``status_code``, ``json()``, ``headers``, ``content``).

Why not httpx there: the load generator runs on the machine it measures, so every core it
takes is one the cluster does not get. httpx (httpcore's pool and anyio) took ~5 ms of CPU
per request here, 0.45–0.55 of the 2 cores in a handling run at 80 req/s; aiohttp takes
a fraction of that. The untimed set-up (logins, checks) keeps httpx.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp


class Answer:
    """A response read to its end."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class FastClient:
    """``async with FastClient(base_url, connections) as client: await client.request(…)``;
    a retry after a dropped keep-alive connection is the caller's (``handling.send``)."""

    #: what a request raises when the server closed the keep-alive connection it used
    DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
    #: what a failed request raises (a timeout, a refused or dropped connection)
    FAILED = (aiohttp.ClientError, TimeoutError)

    def __init__(self, base_url: str, connections: int, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FastClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=None),
            timeout=self._timeout,
            # the services answer JSON; nothing here needs cookies or auto-decompression
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Answer:
        assert self._session is not None, "use FastClient in `async with`"
        target = url if url.startswith("http") else self.base_url + url
        data = None if json is None else jsonlib.dumps(json).encode()
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        async with self._session.request(method, target, headers=sent, data=data) as r:
            return Answer(r.status, r.headers, await r.read())
