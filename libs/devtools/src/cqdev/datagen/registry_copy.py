"""Bulk snapshot loader of the registry's own table (``master_records``) with PostgreSQL COPY.

This is the documented bulk path behind ``python -m cqdev generate``: like restoring a
database snapshot, it writes rows directly and **publishes no registry events** (no
outbox rows). Services that need the same data get it from their own bulk loaders
(:mod:`cqdev.datagen.adjudication_copy`, :mod:`cqdev.datagen.query_copy`,
:mod:`cqdev.datagen.follow_copy`) in the same snapshot; the follow copy is made from the
very events stored here (:meth:`RegistryRow.event`).

Each record is stored exactly as the registry's import stores it: under its natural key
and its id, in the stored form the registry's own codec gives it
(:data:`cqregistry.entrypoints.mappers.RECORD_CODEC`: its event, serialised
deterministically, and that serialisation's hash). So a later ``ImportRecords`` of an
unchanged record finds it by natural key, keeps its id, reports it unchanged and
publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cqregistry.domain.imports import CodeEntry, Entry
from cqregistry.entrypoints.mappers import RECORD_CODEC, event_of
from google.protobuf.message import Message

from cqdev.datagen.bulkcopy import (
    Conn,
    Progress,
    SnapshotCounts,
    copy_rows,
    load_snapshot,
    loaded_before,
    no_progress,
    peek,
)

SCHEMA = "registry"
_COLUMNS = ("kind", "natural_key", "record_id", "content_hash", "payload")
_TYPES = ("text", "text", "text", "text", "bytea")


class RegistryRow(NamedTuple):
    """A record to store: its import entry, its id, and its owner's or holder's person id."""

    entry: Entry
    record_id: str
    person_id: str | None = None

    def event(self) -> Message:
        """The registry event this record stands for: what the registry stores and
        publishes for it, and so what every service's registry consumer is given."""
        return event_of(self.entry, self.record_id, self.person_id)


@dataclass(frozen=True)
class RegistrySnapshot:
    """What to load: ``shared`` catalogue codes may already be present (e.g. imported with
    the sandbox roster) and are inserted only when missing; ``records`` are new ones,
    streamed through COPY."""

    records: Iterable[RegistryRow]
    shared: Sequence[CodeEntry] = ()


def master_row(row: RegistryRow) -> tuple[str, str, str, str, bytes]:
    """(kind, natural_key, record_id, content_hash, payload) as the registry's import
    writes them."""
    form = RECORD_CODEC.stored_form(row.entry, row.record_id, row.person_id)
    return row.entry.kind, row.entry.natural_key, row.record_id, form.content_hash, form.payload


async def copy_snapshot(
    conninfo: str,
    snapshot: RegistrySnapshot,
    progress: Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> SnapshotCounts:
    """Load ``snapshot`` into ``<schema>.master_records`` in one transaction.

    If the first streamed record's natural key is already present the snapshot is taken
    as loaded (a re-run of the same ``generate``; ids differ from run to run, natural keys
    do not) and nothing is written; a half-done load never exists because everything
    commits at once. Publishes no events. The counts are per record kind.
    """
    report = progress or no_progress
    first, records = peek(snapshot.records)

    async def loaded(conn: Conn) -> bool:
        probe = (first.entry.kind, first.entry.natural_key) if first is not None else ()
        sql = "SELECT 1 FROM master_records WHERE kind = %s AND natural_key = %s"
        return await loaded_before(conn, first, sql, probe)

    async def load(conn: Conn, counts: SnapshotCounts) -> None:
        for code in snapshot.shared:
            row = master_row(RegistryRow(code, code.code))
            cur = await conn.execute(
                "INSERT INTO master_records (kind, natural_key, record_id, content_hash, payload)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                row,
            )
            counts.rows[row[0]] = counts.rows.get(row[0], 0) + cur.rowcount
        report("registry.master_records", len(snapshot.shared))
        if first is None:
            return

        def counted_rows() -> Iterator[tuple[str, str, str, str, bytes]]:
            for record in records:
                row = master_row(record)
                counts.rows[row[0]] = counts.rows.get(row[0], 0) + 1
                yield row

        await copy_rows(
            conn, "master_records", _COLUMNS, _TYPES, counted_rows(),
            label="registry.master_records", report=report,
        )  # fmt: skip

    return await load_snapshot(conninfo, schema, loaded, load)
