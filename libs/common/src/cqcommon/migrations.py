"""Forward-only SQL migrations, per service schema, recorded in ``<schema>.schema_migrations``.

Two tracks are applied in order: ``plumbing`` (the outbox and inbox tables every service
has, shipped with this library) and ``service`` (``services/<name>/migrations``). Files
are named ``NNNN_verb_noun.sql``; an applied file may never change (its checksum is
checked), and a concurrent start waits on an advisory lock instead of racing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from cqcommon.db import check_schema_name

PLUMBING_DIR = Path(__file__).parent / "sql"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration file is malformed, or an applied one was edited."""


@dataclass(frozen=True)
class Migration:
    track: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(track: str, directory: Path) -> list[Migration]:
    """Read ``NNNN_name.sql`` files in version order; duplicates and strays are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: expected NNNN_verb_noun.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} used twice in track {track}")
        found[version] = Migration(track, version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(conninfo: str, schema: str, migrations_dir: Path | None) -> list[str]:
    """Apply pending migrations of both tracks to ``schema``; returns what was applied."""
    check_schema_name(schema)
    tracks = [("plumbing", load_migrations("plumbing", PLUMBING_DIR))]
    if migrations_dir is not None:
        tracks.append(("service", load_migrations("service", migrations_dir)))
    applied: list[str] = []
    ident = sql.Identifier(schema)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        # One lock per schema: a second process starting at the same time waits here.
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"migrations:{schema}",))
        try:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " track text NOT NULL, version int NOT NULL, name text NOT NULL,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (track, version))"
                ).format(ident)
            )
            cur = await conn.execute(
                sql.SQL("SELECT track, version, checksum FROM {}.schema_migrations").format(ident)
            )
            done = {(t, v): c for t, v, c in await cur.fetchall()}
            for _track, migrations in tracks:
                for m in migrations:
                    key = (m.track, m.version)
                    if key in done:
                        if done[key] != m.checksum:
                            raise MigrationError(
                                f"{schema}: applied migration {m.track}/{m.version:04d}_{m.name} "
                                "was edited; add a new migration instead"
                            )
                        continue
                    async with conn.transaction():
                        await conn.execute(
                            sql.SQL("SET LOCAL search_path TO {}, public").format(ident)
                        )
                        await conn.execute(m.sql.encode())
                        await conn.execute(
                            sql.SQL(
                                "INSERT INTO {}.schema_migrations (track, version, name, checksum)"
                                " VALUES (%s, %s, %s, %s)"
                            ).format(ident),
                            (m.track, m.version, m.name, m.checksum),
                        )
                    applied.append(f"{schema}:{m.track}/{m.version:04d}_{m.name}")
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"migrations:{schema}",))
    return applied
