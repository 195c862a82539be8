"""Restoring after a broker loss (cqcommon.outbox_admin) against real PostgreSQL: events
published before the point chosen stay published, the rest become pending again, and the
status reports it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from cqcommon.db import Database
from cqcommon.events import new_envelope
from cqcommon.migrations import apply_migrations
from cqcommon.outbox import append_to_outbox
from cqcommon.outbox_admin import outbox_status, republish_since
from cqcommon.settings import Settings
from cqtraffic.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(test_settings: Settings) -> AsyncIterator[Database]:
    schema = f"obadmin_{uuid.uuid4().hex[:8]}"
    await apply_migrations(test_settings.database_url, schema, None)
    database = Database(test_settings.database_url, schema, max_size=2)
    await database.open()
    yield database
    await database.close()


async def test_republish_since_marks_later_published_events_pending_again(db: Database) -> None:
    async with db.transaction() as conn:
        for i in range(3):
            person = reg.PersonRegistered(person_id=str(uuid.uuid4()), name=f"人{i}")
            await append_to_outbox(conn, new_envelope(person, aggregate_id=f"p{i}", producer="t"))
    now = datetime.now().astimezone()
    async with db.transaction() as conn:
        # one published long before the broker loss, two just before it
        await conn.execute(
            "UPDATE outbox SET published_at = CASE WHEN id = (SELECT min(id) FROM outbox)"
            " THEN %s ELSE %s END",
            (now - timedelta(hours=5), now - timedelta(minutes=1)),
        )
    before = await outbox_status(db)
    assert (before.pending, before.published) == (0, 3)
    # how far back a republish can reach (older publications are pruned, cqcommon.retention)
    assert before.oldest_published_at == now - timedelta(hours=5)

    assert await republish_since(db, now - timedelta(minutes=30)) == 2
    after = await outbox_status(db)
    assert (after.pending, after.published) == (2, 1)
    assert after.oldest_pending_at is not None


async def test_republish_refuses_a_time_without_zone(db: Database) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await republish_since(db, datetime(2026, 11, 30, 21, 0))
