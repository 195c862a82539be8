"""Retention of the event log tables: published outbox rows and inbox rows are deleted
once they are older than their retention, in bounded batches, by the processes that own
them — the relay its schema's outbox, each consumer its own group's inbox rows — so the
tables do not grow by every event of every day (at a few hundred events a second, tens
of millions of rows a day).

What the retentions must cover (``Settings`` checks the order):

- an outbox row is kept ``OUTBOX_RETENTION_H`` after it was published: the window that
  ``outbox republish --since`` can send again after a broker loss
  (``cqcommon.outbox_admin``). A row not yet published is never deleted, however old;
- an inbox row is kept ``INBOX_RETENTION_H`` after it was applied, at least as long as the
  outbox keeps rows: every redelivery (a republish, a dead-letter replay, a group reset
  within the topics' retention) must still find the row that makes it a duplicate.

Deletes take rows with ``FOR UPDATE SKIP LOCKED``, so replicas pruning the same table
(hot-standby relays, consumers of one group) never wait on each other, and use the
indexes of migration 0005. Each round deletes at most ``max_batches`` batches, then
yields until the next interval, so a backlog (the first run after an upgrade) is worked
off over a few rounds instead of in one long burst of writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from cqcommon.asyncutil import sleep_or_stop
from cqcommon.db import Database
from cqcommon.metrics import EVENT_LOG_PRUNED
from cqcommon.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    outbox: timedelta
    inbox: timedelta
    #: seconds between rounds; 0 turns pruning off
    interval_s: float
    batch: int = 5000
    max_batches: int = 20


def retention_from(settings: Settings) -> Retention:
    return Retention(
        outbox=timedelta(hours=settings.outbox_retention_h),
        inbox=timedelta(hours=settings.inbox_retention_h),
        interval_s=settings.event_log_prune_interval_s,
    )


async def prune_outbox(db: Database, *, older_than: timedelta, limit: int) -> int:
    """Delete up to ``limit`` outbox rows published more than ``older_than`` ago; how many."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE published_at < now() - %s ORDER BY published_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED)",
            (older_than, limit),
        )
        return max(0, cur.rowcount)


async def prune_inbox(db: Database, group: str, *, older_than: timedelta, limit: int) -> int:
    """Delete up to ``limit`` of ``group``'s inbox rows applied more than ``older_than``
    ago; how many."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "DELETE FROM inbox WHERE consumer_group = %s AND event_id IN (SELECT event_id"
            " FROM inbox WHERE consumer_group = %s AND processed_at < now() - %s"
            " ORDER BY processed_at LIMIT %s FOR UPDATE SKIP LOCKED)",
            (group, group, older_than, limit),
        )
        return max(0, cur.rowcount)


class EventLogPruner:
    """Prunes what one process owns: its schema's outbox (``outbox``) and the inbox rows
    of ``groups``, every ``retention.interval_s``."""

    def __init__(
        self, db: Database, retention: Retention, *, outbox: bool, groups: Sequence[str]
    ) -> None:
        self.db = db
        self.retention = retention
        self.outbox = outbox
        self.groups = list(groups)
        self.pruned_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        if self.retention.interval_s <= 0:
            return
        while not stop.is_set():
            try:
                await self.prune_round()
            except Exception:  # housekeeping: log, keep the process, try next round
                log.exception("pruning the event log of %s failed", self.db.schema)
            await sleep_or_stop(stop, self.retention.interval_s)

    async def prune_round(self) -> dict[str, int]:
        """One round: each table's old rows, up to ``max_batches`` batches each; rows
        deleted per table (``outbox``, ``inbox:<group>``)."""
        r = self.retention
        deleted: dict[str, int] = {}
        if self.outbox:
            deleted["outbox"] = await self._batches(
                "outbox", partial(prune_outbox, self.db, older_than=r.outbox, limit=r.batch)
            )
        for group in self.groups:
            deleted[f"inbox:{group}"] = await self._batches(
                "inbox", partial(prune_inbox, self.db, group, older_than=r.inbox, limit=r.batch)
            )
        return deleted

    async def _batches(self, table: str, batch: Callable[[], Awaitable[int]]) -> int:
        total = 0
        for _ in range(self.retention.max_batches):
            n = await batch()
            total += n
            if n < self.retention.batch:
                break
        if total:
            EVENT_LOG_PRUNED.labels(self.db.schema, table).inc(total)
            self.pruned_total += total
        return total
