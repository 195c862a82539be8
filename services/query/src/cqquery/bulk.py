"""Bulk snapshot loader of the query service's read model (``persons``, ``vehicles``,
``licences``, ``violations``) with PostgreSQL COPY.

This is the documented bulk path behind ``python -m cqregistry generate``: like restoring
a database snapshot it writes the read model directly instead of building it from
registry and adjudication events, and it **publishes nothing** (the query service never
publishes). The rows must describe the same facts the owners' snapshots hold (the
adjudication snapshot's violation ids and statuses), which the caller guarantees by
feeding both from one generator.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import psycopg
from cqcommon.db import check_schema_name

SCHEMA = "query"
Progress = Callable[[str, int], None]
PROGRESS_EVERY = 2000  # rows between progress callbacks


class PersonInput(NamedTuple):
    person_id: uuid.UUID
    name: str
    id_number: str
    phone: str
    alipay_user_id: str | None


class VehicleInput(NamedTuple):
    vehicle_id: uuid.UUID
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: uuid.UUID
    vehicle_kind: str


class LicenceInput(NamedTuple):
    licence_id: uuid.UUID
    person_id: uuid.UUID
    licence_no: str
    file_no: str
    licence_class: str
    first_issued_on: dt.date
    points: int
    status: str


class ViolationInput(NamedTuple):
    violation_id: uuid.UUID
    vehicle_id: uuid.UUID
    plate_type: str
    plate_number: str
    licence_id: uuid.UUID | None
    violation_code: str
    description_zh: str
    occurred_at: dt.datetime
    place: str
    fine_fen: int
    points: int
    source: str
    procedure: str
    status: str
    decision_no: str | None
    decision_date: dt.date | None


@dataclass(frozen=True)
class QuerySnapshot:
    """The read-model tables to load, each an iterable consumed once (constant memory)."""

    persons: Iterable[PersonInput]
    vehicles: Iterable[VehicleInput]
    licences: Iterable[LicenceInput]
    violations: Iterable[ViolationInput]


@dataclass
class QueryCounts:
    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


_TABLES: dict[str, tuple[type[tuple[Any, ...]], list[str]]] = {
    "persons": (PersonInput, ["uuid", "text", "text", "text", "text"]),
    "vehicles": (VehicleInput, ["uuid", "text", "text", "text", "uuid", "text"]),
    "licences": (LicenceInput, ["uuid", "uuid", "text", "text", "text", "date", "int4", "text"]),
    "violations": (
        ViolationInput,
        [
            "uuid",
            "uuid",
            "text",
            "text",
            "uuid",
            "text",
            "text",
            "timestamptz",
            "text",
            "int8",
            "int4",
            "text",
            "text",
            "text",
            "text",
            "date",
        ],
    ),
}

_R = TypeVar("_R")
Conn = psycopg.AsyncConnection[Any]


async def _copy(conn: Conn, table: str, rows: Iterable[tuple[Any, ...]], report: Progress) -> int:
    """COPY ``rows`` (binary, columns = the input tuple's fields) into ``table``."""
    row_type, types = _TABLES[table]
    columns = ", ".join(row_type._fields)  # type: ignore[attr-defined]
    written = pending = 0
    async with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)
            pending += 1
            if pending >= PROGRESS_EVERY:
                written += pending
                report(f"query.{table}", pending)
                pending = 0
    written += pending
    report(f"query.{table}", pending)
    return written


def _noop(_table: str, _rows: int) -> None:
    return None


def _peek(rows: Iterable[_R]) -> tuple[_R | None, Iterator[_R]]:
    it = iter(rows)
    first = next(it, None)
    return first, (it if first is None else itertools.chain((first,), it))


async def copy_snapshot(
    conninfo: str,
    snapshot: QuerySnapshot,
    progress: Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> QueryCounts:
    """Load ``snapshot`` into the read model in one transaction.

    Every row must be new. If the snapshot's first vehicle is already present the
    snapshot is taken as loaded (a re-run of the same ``generate``) and nothing is written.
    """
    report = progress or _noop
    counts = QueryCounts()
    check_schema_name(schema)
    first, vehicles = _peek(snapshot.vehicles)
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        if first is not None:
            cur = await conn.execute(
                "SELECT 1 FROM vehicles WHERE vehicle_id = %s", (first.vehicle_id,)
            )
            if await cur.fetchone() is not None:
                counts.skipped = True
                return counts
        async with conn.transaction():
            # The whole snapshot is re-runnable, so skip waiting for the WAL flush.
            await conn.execute("SET LOCAL synchronous_commit = off")
            counts.rows["persons"] = await _copy(conn, "persons", snapshot.persons, report)
            counts.rows["vehicles"] = await _copy(conn, "vehicles", vehicles, report)
            counts.rows["licences"] = await _copy(conn, "licences", snapshot.licences, report)
            counts.rows["violations"] = await _copy(conn, "violations", snapshot.violations, report)
    return counts
