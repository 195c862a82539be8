"""Small asyncio helpers shared by the long-running loops (relay, consumer, health)."""

from __future__ import annotations

import asyncio
import contextlib
import gc


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
