"""Bulk snapshot loader of the registry's own table (``master_records``) with PostgreSQL COPY.

This is the documented bulk path behind ``python -m cqregistry generate``: like restoring
a database snapshot, it writes rows directly and **publishes no registry events** (no
outbox rows). Services that need the same data get it from their own bulk loaders
(``cqadjudication.bulk``, ``cqquery.bulk``) in the same snapshot.

Each record is validated and stored exactly as the import use case stores it
(:func:`cqregistry.service_layer.import_records.validate_record`, the payload serialised
deterministically, ``content_hash`` = its SHA-256), so a later ``ImportRecords`` of an
unchanged record reports it unchanged and publishes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import psycopg
from cqcommon.db import check_schema_name
from cqtraffic.registry.v1 import registry_pb2 as reg

from cqregistry.service_layer.import_records import validate_record

SCHEMA = "registry"
Progress = Callable[[str, int], None]
PROGRESS_EVERY = 2000  # rows between progress callbacks: cheap enough, smooth enough


@dataclass(frozen=True)
class RegistrySnapshot:
    """What to load: ``shared`` records may already be present (e.g. the violation-code
    catalogue the sandbox roster imported) and are inserted only when missing;
    ``records`` are new ones, streamed through COPY."""

    records: Iterable[reg.RegistryRecord]
    shared: Sequence[reg.RegistryRecord] = ()


@dataclass
class RegistryCounts:
    """Rows written per kind; ``skipped`` when the snapshot was found already loaded."""

    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


def master_row(index: int, record: reg.RegistryRecord) -> tuple[str, str, str, bytes]:
    """(kind, record_id, content_hash, payload) exactly as ``import_records`` writes them."""
    kind, record_id, payload = validate_record(index, record)
    raw = payload.SerializeToString(deterministic=True)
    return kind, record_id, hashlib.sha256(raw).hexdigest(), raw


def _noop(_table: str, _rows: int) -> None:
    return None


async def copy_snapshot(
    conninfo: str,
    snapshot: RegistrySnapshot,
    progress: Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> RegistryCounts:
    """Load ``snapshot`` into ``<schema>.master_records`` in one transaction.

    If the first streamed record is already present the snapshot is taken as loaded
    (a re-run of the same ``generate``) and nothing is written; a half-done load never
    exists because everything commits at once. Publishes no events.
    """
    report = progress or _noop
    counts = RegistryCounts()
    check_schema_name(schema)
    records = iter(snapshot.records)
    first = next(records, None)
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        if first is not None:
            kind, record_id, _, _ = master_row(0, first)
            cur = await conn.execute(
                "SELECT 1 FROM master_records WHERE kind = %s AND record_id = %s",
                (kind, record_id),
            )
            if await cur.fetchone() is not None:
                counts.skipped = True
                return counts
        async with conn.transaction():
            # A snapshot load is re-runnable as a whole, so losing the last commit on a
            # server crash is harmless; it saves a WAL flush wait.
            await conn.execute("SET LOCAL synchronous_commit = off")
            for i, record in enumerate(snapshot.shared):
                row = master_row(i, record)
                cur = await conn.execute(
                    "INSERT INTO master_records (kind, record_id, content_hash, payload)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (kind, record_id) DO NOTHING",
                    row,
                )
                counts.rows[row[0]] = counts.rows.get(row[0], 0) + cur.rowcount
            report("registry.master_records", len(snapshot.shared))
            if first is None:
                return counts
            async with conn.cursor().copy(
                "COPY master_records (kind, record_id, content_hash, payload)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "text", "bytea"])
                pending = 0
                for i, record in enumerate(itertools.chain((first,), records)):
                    row = master_row(i, record)
                    await copy.write_row(row)
                    counts.rows[row[0]] = counts.rows.get(row[0], 0) + 1
                    pending += 1
                    if pending >= PROGRESS_EVERY:
                        report("registry.master_records", pending)
                        pending = 0
                report("registry.master_records", pending)
    return counts
