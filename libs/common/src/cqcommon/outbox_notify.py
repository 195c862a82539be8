"""Wake the outbox relays after a commit, without slowing the commit down.

A relay ``LISTEN``s on its schema's channel (``cqcommon.outbox``). Notifying from inside
the transaction that writes the events (a trigger, or ``pg_notify`` before ``COMMIT``)
makes PostgreSQL take its one notification-queue lock just before that commit and hold it
until the commit is on disk, so every event-writing transaction of the whole database
would commit one after another instead of sharing disk flushes.

So the writer notifies *after* its commit, from a per-process background task with one
connection of its own:

- a commit that wrote events only calls :meth:`OutboxNotifier.poke` (no I/O, no wait);
- the task sends one ``NOTIFY`` for however many commits poked it since its last one, so a
  burst costs a handful of notifications, not one per commit;
- its connection runs with ``synchronous_commit = off``: the notifying transaction holds
  the queue lock only for microseconds (losing a notification in a crash costs nothing,
  the relay polls as well);
- any error is logged and the connection rebuilt on the next poke: a notification is an
  optimisation, the relay's poll (``OUTBOX_POLL_INTERVAL_S``) still finds every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

log = logging.getLogger(__name__)


def notify_channel(schema: str) -> str:
    """The channel a schema's relays listen on (an identifier: at most 63 bytes)."""
    return f"outbox_{schema}"[:63]


class OutboxNotifier:
    """Coalesced after-commit ``NOTIFY`` on one schema's outbox channel."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo = conninfo
        self.channel = notify_channel(schema)
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent_total = 0
        self.failed_total = 0

    def poke(self) -> None:
        """Ask for a notification soon (called right after a commit that wrote events)."""
        self._pending.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"outbox-notify:{self.channel}"
            )

    async def _run(self) -> None:
        conn: psycopg.AsyncConnection[object] | None = None
        try:
            while True:
                await self._pending.wait()
                self._pending.clear()  # pokes from now on ask for the next notification
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True, connect_timeout=5
                        )
                        await conn.execute("SET synchronous_commit TO off")
                    await conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
                    self.sent_total += 1
                except (psycopg.Error, OSError) as exc:
                    self.failed_total += 1
                    log.warning("outbox notification on %s failed: %r", self.channel, exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                    conn = None
                    return  # the next poke starts afresh; the relay's poll covers the gap
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
