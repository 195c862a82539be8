"""The event log's retention against real PostgreSQL (cqcommon.retention): published
outbox rows and a group's inbox rows past their retention go, in bounded batches; a row
not yet published, a recent one and another group's rows stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from cqcommon.db import Database
from cqcommon.metrics import EVENT_LOG_PRUNED
from cqcommon.retention import EventLogPruner, Retention, prune_inbox, prune_outbox
from cqcommon.settings import Settings

pytestmark = pytest.mark.integration

WEEK = timedelta(days=7)


async def add_outbox(
    db: Database, *, published_days_ago: float | None, created_days_ago: float
) -> str:
    event_id = str(uuid.uuid4())
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO outbox (event_id, event_type, topic, message_key, envelope,"
            " created_at, published_at) VALUES (%s, 't', 't', 'k', '',"
            " now() - %s::interval, now() - %s::interval)",
            (
                event_id,
                timedelta(days=created_days_ago),
                None if published_days_ago is None else timedelta(days=published_days_ago),
            ),
        )
    return event_id


async def add_inbox(db: Database, group: str, *, days_ago: float) -> str:
    event_id = str(uuid.uuid4())
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO inbox (consumer_group, event_id, event_type, topic, kafka_partition,"
            " kafka_offset, processed_at) VALUES (%s, %s, 't', 't', 0, 0, now() - %s)",
            (group, event_id, timedelta(days=days_ago)),
        )
    return event_id


async def outbox_ids(db: Database) -> set[str]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT event_id::text FROM outbox")
        return {r[0] for r in await cur.fetchall()}


async def inbox_ids(db: Database, group: str) -> set[str]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT event_id::text FROM inbox WHERE consumer_group = %s", (group,)
        )
        return {r[0] for r in await cur.fetchall()}


async def test_old_published_outbox_rows_go_and_pending_or_recent_ones_stay(
    plumbing: tuple[Database, Settings],
) -> None:
    db, _ = plumbing
    old = [await add_outbox(db, published_days_ago=8, created_days_ago=8) for _ in range(3)]
    recent = await add_outbox(db, published_days_ago=6, created_days_ago=8)
    pending = await add_outbox(db, published_days_ago=None, created_days_ago=30)
    assert await prune_outbox(db, older_than=WEEK, limit=2) == 2  # bounded by the limit
    assert await prune_outbox(db, older_than=WEEK, limit=2) == 1
    assert await prune_outbox(db, older_than=WEEK, limit=2) == 0
    remaining = await outbox_ids(db)
    assert remaining == {recent, pending}
    assert not remaining & set(old)


async def test_a_group_prunes_only_its_own_old_inbox_rows(
    plumbing: tuple[Database, Settings],
) -> None:
    db, _ = plumbing
    old_mine = await add_inbox(db, "mine", days_ago=15)
    recent_mine = await add_inbox(db, "mine", days_ago=13)
    old_theirs = await add_inbox(db, "theirs", days_ago=15)
    assert await prune_inbox(db, "mine", older_than=2 * WEEK, limit=100) == 1
    assert await inbox_ids(db, "mine") == {recent_mine}
    assert await inbox_ids(db, "theirs") == {old_theirs}
    assert old_mine not in await inbox_ids(db, "mine")


async def test_a_pruning_round_works_a_backlog_off_in_bounded_batches(
    plumbing: tuple[Database, Settings],
) -> None:
    """A round deletes at most max_batches x batch rows of each table, so a backlog (the
    first round after an upgrade) goes over several rounds; the deletions are counted."""
    db, _ = plumbing
    for _ in range(5):
        await add_outbox(db, published_days_ago=10, created_days_ago=10)
        await add_inbox(db, "g1", days_ago=20)
    retention = Retention(outbox=WEEK, inbox=2 * WEEK, interval_s=60, batch=2, max_batches=2)
    pruner = EventLogPruner(db, retention, outbox=True, groups=["g1"])
    counted = EVENT_LOG_PRUNED.labels(db.schema, "outbox")._value.get()
    assert await pruner.prune_round() == {"outbox": 4, "inbox:g1": 4}
    assert await pruner.prune_round() == {"outbox": 1, "inbox:g1": 1}
    assert await pruner.prune_round() == {"outbox": 0, "inbox:g1": 0}
    assert pruner.pruned_total == 10
    assert EVENT_LOG_PRUNED.labels(db.schema, "outbox")._value.get() - counted == 5
