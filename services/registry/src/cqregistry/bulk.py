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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cqcommon.bulkcopy import (
    Progress,
    copy_rows,
    loaded_before,
    no_progress,
    peek,
    schema_connection,
    snapshot_transaction,
)
from cqtraffic.registry.v1 import registry_pb2 as reg

from cqregistry.service_layer.import_records import validate_record

SCHEMA = "registry"


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
    report = progress or no_progress
    counts = RegistryCounts()
    first, records = peek(snapshot.records)
    async with schema_connection(conninfo, schema) as conn:
        probe = master_row(0, first)[:2] if first is not None else ()
        sql = "SELECT 1 FROM master_records WHERE kind = %s AND record_id = %s"
        if await loaded_before(conn, first, sql, probe):
            counts.skipped = True
            return counts
        async with snapshot_transaction(conn):
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

            def counted_rows() -> Iterator[tuple[str, str, str, bytes]]:
                for i, record in enumerate(records):
                    row = master_row(i, record)
                    counts.rows[row[0]] = counts.rows.get(row[0], 0) + 1
                    yield row

            await copy_rows(
                conn, "master_records", ("kind", "record_id", "content_hash", "payload"),
                ("text", "text", "text", "bytea"), counted_rows(),
                label="registry.master_records", report=report,
            )  # fmt: skip
    return counts
