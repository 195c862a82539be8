"""A watcher of the query service's read model for the benchmarks' timed loops.

Polling each awaited violation's detail through the gateway every 0.1 s was two thirds of
the HTTP requests of a handling run and, with its client, a third of the cores of the
machine being measured: load that no user makes. One task instead asks the read model,
every ``interval_s``, which of the awaited violations have reached the status (one SQL
statement for all of them); each worker then reads its violation once through the
gateway, as its user would, and again only if that answer does not show it yet.
"""

from __future__ import annotations

import asyncio

import psycopg


class ReadModelWatcher:
    """``await watcher.seen(violation_id, timeout_s)`` returns once ``query.violations``
    shows ``status`` for it (or the timeout passed: the gateway read after it tells);
    ``run(stop)`` is the one polling task."""

    def __init__(self, url: str, status: str, interval_s: float = 0.02) -> None:
        self.url = url
        self.status = status
        self.interval_s = interval_s
        #: statements this watcher sent (each one its own transaction): the plumbing
        #: counts (``benchlib.plumbing``) leave them out, they are the load generator's
        self.queries = 0
        self._waiting: dict[str, asyncio.Event] = {}

    async def seen(self, violation_id: str, timeout_s: float) -> None:
        event = self._waiting.setdefault(violation_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            self._waiting.pop(violation_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while not stop.is_set():
                ids = list(self._waiting)
                if ids:
                    self.queries += 1
                    cur = await conn.execute(
                        "SELECT violation_id::text FROM query.violations"
                        " WHERE violation_id = ANY(%s::uuid[]) AND status = %s",
                        (ids, self.status),
                    )
                    for (violation_id,) in await cur.fetchall():
                        event = self._waiting.get(violation_id)
                        if event is not None:
                            event.set()
                await asyncio.sleep(self.interval_s)
