"""Bulk snapshot loading with PostgreSQL COPY, shared by the dev data generator's loaders
(``cqdev.datagen.*_copy``, one per service schema): the binary COPY loop with progress reports, and the connection and
transaction a snapshot load runs in. Snapshot loads publish no events."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from cqcommon.db import check_schema_name

Progress = Callable[[str, int], None]
PROGRESS_EVERY = 2000  # rows between progress callbacks: cheap enough, smooth enough
Conn = psycopg.AsyncConnection[Any]
_R = TypeVar("_R")


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


async def copy_rows(
    conn: Conn,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    label: str,
    report: Progress = no_progress,
) -> int:
    """COPY ``rows`` (binary) into ``table``; returns how many were written.

    ``table`` and ``columns`` are interpolated into SQL: they come from code, never input.
    """
    if isinstance(columns, str):  # a str is a Sequence[str] too: refuse "a, b" strings
        raise TypeError("columns must be a sequence of column names, not one string")
    written = pending = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    async with conn.cursor().copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            await copy.write_row(row)
            pending += 1
            if pending >= PROGRESS_EVERY:
                written += pending
                report(label, pending)
                pending = 0
    written += pending
    report(label, pending)
    return written
