"""Bulk snapshot loading with PostgreSQL COPY, shared by the dev data generator's loaders
(``cqdev.datagen.*_copy``, one per service schema): the binary COPY loop with progress
reports (rows from a plain or an async iterable), the connection and transaction a snapshot
load runs in, and the load-once frame every loader uses (:func:`load_snapshot`: skipped
when its first row is there already). Snapshot loads publish no events."""

from __future__ import annotations

import itertools
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from cqcommon.db import check_schema_name

Progress = Callable[[str, int], None]
PROGRESS_EVERY = 2000  # rows between progress callbacks: cheap enough, smooth enough
Conn = psycopg.AsyncConnection[Any]
_R = TypeVar("_R")


@dataclass
class SnapshotCounts:
    """Rows a loader wrote per table; ``skipped`` when it found its snapshot loaded already."""

    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


def no_progress(_label: str, _rows: int) -> None:
    """The progress callback of a caller that wants none."""


def peek(rows: Iterable[_R]) -> tuple[_R | None, Iterator[_R]]:
    """The first item (or None) and an iterator that still yields every item."""
    it = iter(rows)
    first = next(it, None)
    return first, (it if first is None else itertools.chain((first,), it))


async def loaded_before(conn: Conn, first: _R | None, sql: str, params: tuple[Any, ...]) -> bool:
    """Whether a snapshot was loaded already: its first row (``first``) is there.

    Snapshots are all-or-nothing, so the first row stands for all of them; ``sql``
    selects it by key with ``params``. An empty snapshot was never loaded.
    """
    if first is None:
        return False
    cur = await conn.execute(sql, params)
    return await cur.fetchone() is not None


async def vehicle_loaded_before(conn: Conn, first: Any) -> bool:
    """:func:`loaded_before` for a service's own ``vehicles`` copy, probed by plate: ids are
    random per generated data set, plates follow from the seed, so a re-run is found by plate."""
    probe = (first.plate_type, first.plate_number) if first is not None else ()
    sql = "SELECT 1 FROM vehicles WHERE plate_type = %s AND plate_number = %s"
    return await loaded_before(conn, first, sql, probe)


@asynccontextmanager
async def schema_connection(conninfo: str, schema: str) -> AsyncIterator[Conn]:
    """A connection of its own whose search path is ``schema`` (no pool: one long load)."""
    check_schema_name(schema)
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        yield conn


@asynccontextmanager
async def snapshot_transaction(conn: Conn) -> AsyncIterator[None]:
    """One transaction for the whole snapshot: it lands entirely or not at all. A snapshot
    is re-runnable as a whole, so losing the last commit on a crash is harmless and the
    WAL flush wait is skipped."""
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        yield


@dataclass(frozen=True)
class CopyTable:
    """A table a loader COPYs into: its name, its columns and their PostgreSQL types."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    async def copy(
        self,
        conn: Conn,
        counts: SnapshotCounts,
        rows: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]],
        *,
        schema: str,
        report: Progress,
    ) -> None:
        """:func:`copy_rows` into this table; the count lands in ``counts`` under its name."""
        counts.rows[self.name] = await copy_rows(
            conn, self.name, self.columns, self.types, rows,
            label=f"{schema}.{self.name}", report=report,
        )  # fmt: skip


async def load_snapshot(
    conninfo: str,
    schema: str,
    loaded: Callable[[Conn], Awaitable[bool]],
    load: Callable[[Conn, SnapshotCounts], Awaitable[None]],
) -> SnapshotCounts:
    """The frame of every loader: on a connection of its own to ``schema``, ``loaded`` says
    whether the snapshot is there already (then nothing is written and the counts say
    ``skipped``); otherwise ``load`` writes it, counting rows into the counts, in one
    :func:`snapshot_transaction`."""
    counts = SnapshotCounts()
    async with schema_connection(conninfo, schema) as conn:
        if await loaded(conn):
            counts.skipped = True
            return counts
        async with snapshot_transaction(conn):
            await load(conn, counts)
    return counts


async def _each(rows: Iterable[_R] | AsyncIterable[_R]) -> AsyncIterator[_R]:
    """Every item of a plain or an async iterable, in order."""
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row


async def copy_rows(
    conn: Conn,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]],
    *,
    label: str,
    report: Progress = no_progress,
) -> int:
    """COPY ``rows`` (binary) into ``table``; returns how many were written. ``rows`` may be
    an async iterable (rows that are made by awaiting something, e.g. an event handler).

    ``table`` and ``columns`` are interpolated into SQL: they come from code, never input.
    """
    if isinstance(columns, str):  # a str is a Sequence[str] too: refuse "a, b" strings
        raise TypeError("columns must be a sequence of column names, not one string")
    written = pending = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    async with conn.cursor().copy(statement) as copy:
        copy.set_types(list(types))
        async for row in _each(rows):
            await copy.write_row(row)
            pending += 1
            if pending >= PROGRESS_EVERY:
                written += pending
                report(label, pending)
                pending = 0
    written += pending
    report(label, pending)
    return written
