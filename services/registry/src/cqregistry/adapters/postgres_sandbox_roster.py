"""PostgreSQL adapter of :class:`cqregistry.ports.SandboxRosterLog`: table
``sandbox_roster_loads``, one row per completed sandbox roster load (migration 0003)."""

from __future__ import annotations

from datetime import datetime

from cqcommon.db import Database


class PostgresSandboxRosterLog:
    """The completed loads, each in its own short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, *, records: int, violations: int, follows: int) -> datetime:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO sandbox_roster_loads (records, violations, follows)"
                " VALUES (%s, %s, %s) RETURNING loaded_at",
                (records, violations, follows),
            )
            row = await cur.fetchone()
        assert row is not None  # INSERT ... RETURNING always answers a row
        loaded_at: datetime = row[0]
        return loaded_at

    async def last_loaded_at(self) -> datetime | None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT max(loaded_at) FROM sandbox_roster_loads")
            row = await cur.fetchone()
        return None if row is None else row[0]
