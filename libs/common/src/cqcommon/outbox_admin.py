"""Operator actions on a service's outbox: how far publishing got, and publishing again
what a lost broker took with it.

The outbox keeps every event for ``OUTBOX_RETENTION_H`` after it is published
(``published_at`` set; ``cqcommon.retention`` deletes it then), so when a broker is lost
with events that some consumer group had not read yet, those events are still here. ``republish_since`` marks the rows published from a point in time on as
pending again; the relay sends them once more and every consumer's inbox skips the ones
it had already applied (events are keyed by id), so choosing the point too early costs
only duplicates that change nothing, never a lost event.

Used through ``python -m cq<service> outbox status|republish --since <ISO time>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cqcommon.db import Database
from cqcommon.outbox_notify import notify_channel


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    oldest_pending_at: datetime | None
    last_published_at: datetime | None
    published: int
    #: the oldest publication still kept: a republish cannot reach further back
    oldest_published_at: datetime | None = None


async def outbox_status(db: Database) -> OutboxStatus:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE published_at IS NULL),"
            " min(created_at) FILTER (WHERE published_at IS NULL),"
            " max(published_at), count(*) FILTER (WHERE published_at IS NOT NULL),"
            " min(published_at) FROM outbox"
        )
        row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return OutboxStatus(
        pending=int(row[0]),
        oldest_pending_at=row[1],
        last_published_at=row[2],
        published=int(row[3]),
        oldest_published_at=row[4],
    )


async def republish_since(db: Database, since: datetime) -> int:
    """Mark every event published at or after ``since`` as pending again; returns how many.
    The relay is woken at once (the same channel as a new event's notification)."""
    if since.tzinfo is None:
        raise ValueError("since must carry a time zone (e.g. 2026-11-30T21:00:00+08:00)")
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE outbox SET published_at = NULL, attempts = 0, last_error = NULL,"
            " next_attempt_at = now() WHERE published_at >= %s",
            (since,),
        )
        count = cur.rowcount
        await conn.execute("SELECT pg_notify(%s, '')", (notify_channel(db.schema),))
    return count
