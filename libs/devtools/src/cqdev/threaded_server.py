"""A local fake of an outside provider (Alipay, the SMS gateway) served by uvicorn in a
background thread on a loopback port, for tests and the sandbox: ``start()`` returns once
it accepts, ``stop()`` ends injected delays at once and joins the thread. The fakes
subclass it and are the ASGI app themselves."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn


def bound_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``(host, port)``; port 0: the kernel picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ThreadedServer:
    """The lifecycle of a fake; a subclass implements ``__call__`` (ASGI) and sets
    ``_loop`` / ``_async_stop`` from inside its server's loop on the first request."""

    #: name of the server thread and of the fake in error messages
    server_name = "fake"

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_stop: asyncio.Event | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        if self.port is None:
            raise RuntimeError(f"{self.server_name} is not started")
        return f"http://{self._host}:{self.port}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The fake's ASGI app (the subclass's)."""
        raise NotImplementedError

    def _before_start(self) -> None:
        """Hook: reset what a previous run left (called before the thread starts)."""

    def _before_stop(self) -> None:
        """Hook: release what the server's loop holds (called while it still runs)."""

    def start(self, timeout_s: float = 10.0) -> Self:
        """Serve on the port in a background thread; returns when it accepts."""
        if self._thread is not None:
            raise RuntimeError(f"{self.server_name} already started")
        sock = bound_socket(self._host, self._requested_port)
        self.port = sock.getsockname()[1]
        self._before_start()
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
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=self.server_name,
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"{self.server_name} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and join its thread (idempotent); injected delays end at once."""
        self._before_stop()
        if self._loop is not None and self._async_stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
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
