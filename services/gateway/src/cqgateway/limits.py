"""Request body size limit as a pure ASGI middleware (R-ERR-1: oversized bodies are a 4xx).

Two checks, because a client may or may not announce the size: a ``Content-Length``
over the limit is refused before a byte is read, and a chunked (or lying) body is
counted as it streams and cut off the moment it passes the limit, so the gateway never
buffers more than ``max_body_bytes`` (+ one chunk) of anybody's upload. The answer is
413 with code ``BODY_TOO_LARGE``.
"""

from __future__ import annotations

from cqcommon.errors import BODY_TOO_LARGE, DomainError
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cqgateway.errors import send_error


class BodyTooLargeError(HTTPException):
    """Raised inside ``receive`` when a streamed body passes the limit.

    It is an ``HTTPException`` because FastAPI turns any other exception raised while
    reading a body into a 400; this one passes through to the 413 handler.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodySizeLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes`` with 413 ``BODY_TOO_LARGE``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        details = {"max_bytes": limit}
        for key, value in scope.get("headers", ()):
            # An unparsable length is the server's to refuse; the stream count still applies.
            if key == b"content-length" and value.strip().isdigit() and int(value) > limit:
                # The body was not read: close the connection rather than drain it.
                await send_error(send, DomainError(BODY_TOO_LARGE, details=details), close=True)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            # The app was reading the body, so it cannot have answered yet; if it somehow
            # did, the connection is simply closed by the server.
            if not response_started:
                await send_error(send, DomainError(BODY_TOO_LARGE, details=details), close=True)
