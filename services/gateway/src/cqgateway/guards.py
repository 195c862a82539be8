"""Pure ASGI guards every request passes: the string check of the URL and the security
headers of every response.

``StringCheckMiddleware`` refuses a request whose path or query (names and values, after
percent-decoding, exactly as Starlette decodes them for the routes) holds a character
``cqcommon.text`` forbids: NUL, other controls, bidi overrides, zero-width characters.
It answers 400 ``INVALID_CHARACTERS`` before any dependency runs, so such a string
never reaches a service or PostgreSQL (which answers NUL with an error, a 500 before).
Request *bodies* are checked once by the request models (``schemas.StrictRequest``).

``SecurityHeadersMiddleware`` adds ``X-Content-Type-Options: nosniff`` to every response
and ``Cache-Control: no-store`` to every ``/api/v1`` and ``/internal/v1`` response (they
carry personal data; errors included), keeping a value a route set itself.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from cqcommon.errors import DomainError
from cqcommon.text import check_text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cqgateway.errors import send_error

#: Path prefixes whose responses may carry personal data: never stored by a cache.
PRIVATE_PREFIXES: tuple[str, ...] = ("/api/", "/internal/")


def check_url(scope: Scope) -> None:
    """``DomainError(INVALID_CHARACTERS)`` when the path or a query name/value is not clean."""
    check_text(str(scope.get("path", "")), field="path")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    # The same decoding as starlette.datastructures.QueryParams, so what is checked here is
    # exactly what a route receives.
    for name, value in parse_qsl(query, keep_blank_values=True):
        check_text(name, field="query")  # first: the value's field name echoes it
        check_text(value, field=f"query.{name}")


class StringCheckMiddleware:
    """400 ``INVALID_CHARACTERS`` for a forbidden character in the path or query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check_url(scope)
            except DomainError as exc:
                await send_error(send, exc)
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """``nosniff`` on every response, ``no-store`` on the API prefixes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = str(scope.get("path", "")).startswith(PRIVATE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {key.lower() for key, _ in headers}
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
