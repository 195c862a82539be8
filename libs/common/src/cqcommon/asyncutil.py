"""Small asyncio helpers shared by the long-running loops (relay, consumer, health)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def settle_heap() -> None:
    """Once a server has started: move everything allocated so far (modules, pools,
    clients) out of the garbage collector's view and collect the young generations less
    often. Request garbage is short-lived; without this, full collections walk the
    whole start-up heap and stall the event loop (tail latency)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def wait_or_stop(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Wait until ``wake`` or ``stop`` is set, or ``seconds`` have passed."""
    if wake.is_set() or stop.is_set():
        return
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class OwnThread:
    """One worker thread for a long-running loop's blocking calls (kafka-python's consumer
    and producer), apart from the event loop's default executor.

    The default executor has few threads (min(32, cores + 4): 6 on two cores) and every
    ``asyncio.to_thread`` of the process shares them; a burst there (documents, password
    hashes, a slow broker call) held up the polls and publishes behind it. One thread per
    loop also keeps a client that is not thread-safe on one thread. Made on first use;
    ``close`` lets it go once nothing runs on it (the next ``run`` makes a new one).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
