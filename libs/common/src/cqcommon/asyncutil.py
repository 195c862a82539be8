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
