"""Fixtures of cqcommon's integration tests (real PostgreSQL and Tansu)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from cqcommon.db import Database
from cqcommon.migrations import apply_migrations
from cqcommon.settings import Settings


@pytest.fixture
async def plumbing(test_settings: Settings) -> AsyncIterator[tuple[Database, Settings]]:
    """A schema with only the plumbing tables (outbox, inbox) and a table ``applied`` for
    test handlers to write, and a topic prefix no service consumes."""
    schema = f"plumbing_{uuid.uuid4().hex[:8]}"
    await apply_migrations(test_settings.database_url, schema, None)
    settings = test_settings.model_copy(update={"kafka_topic_prefix": f"plumb-{schema}."})
    db = Database(settings.database_url, schema, max_size=4)
    await db.open()
    async with db.connection() as conn:
        await conn.execute("CREATE TABLE applied (event_id uuid, person_id text)")
        await conn.commit()
    yield db, settings
    await db.close()
