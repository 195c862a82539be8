"""Bulk snapshot loader of the query service's read model (``persons``, ``vehicles``,
``licences``, ``violations``) with PostgreSQL COPY.

This is the documented bulk path behind ``python -m cqdev generate``: like restoring
a database snapshot it writes the read model directly instead of building it from
registry and adjudication events, and it **publishes nothing** (the query service never
publishes). The rows must describe the same facts the owners' snapshots hold (the
adjudication snapshot's violation ids and statuses), which the caller guarantees by
feeding both from one generator.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cqdev.datagen.bulkcopy import (
    Conn,
    Progress,
    copy_rows,
    no_progress,
    peek,
    schema_connection,
    snapshot_transaction,
    vehicle_loaded_before,
)

SCHEMA = "query"


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


def _as_is(rows: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    return rows


def _with_recorded(rows: Iterable[ViolationInput]) -> Iterable[tuple[Any, ...]]:
    # a violation's shown columns start as what was recorded (migration 0002)
    for r in rows:
        yield (*r, r.status, r.licence_id, r.decision_no, r.decision_date, r.fine_fen, r.points)


@dataclass(frozen=True)
class _Table:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: Callable[[Iterable[Any]], Iterable[tuple[Any, ...]]] = _as_is


_TABLES: dict[str, _Table] = {
    "persons": _Table(PersonInput._fields, ("uuid", "text", "text", "text", "text")),
    "vehicles": _Table(VehicleInput._fields, ("uuid", "text", "text", "text", "uuid", "text")),
    "licences": _Table(
        LicenceInput._fields, ("uuid", "uuid", "text", "text", "text", "date", "int4", "text")
    ),
    "violations": _Table(
        (
            *ViolationInput._fields,
            "recorded_status",
            "recorded_licence_id",
            "recorded_decision_no",
            "recorded_decision_date",
            "recorded_fine_fen",
            "recorded_points",
        ),
        (
            *("uuid", "uuid", "text", "text", "uuid", "text", "text", "timestamptz", "text"),
            *("int8", "int4", "text", "text", "text", "text", "date"),
            *("text", "uuid", "text", "date", "int8", "int4"),
        ),
        _with_recorded,
    ),
}


async def _copy(conn: Conn, table: str, rows: Iterable[Any], report: Progress) -> int:
    """COPY ``rows`` into ``table`` as its ``_TABLES`` spec says."""
    spec = _TABLES[table]
    return await copy_rows(
        conn,
        table,
        spec.columns,
        spec.types,
        spec.rows(rows),
        label=f"query.{table}",
        report=report,
    )


async def copy_snapshot(
    conninfo: str,
    snapshot: QuerySnapshot,
    progress: Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> QueryCounts:
    """Load ``snapshot`` into the read model in one transaction.

    Every row must be new. If the snapshot's first vehicle is already present the
    snapshot is taken as loaded (a re-run of the same ``generate``, found by plate) and nothing is written.
    """
    report = progress or no_progress
    counts = QueryCounts()
    first, vehicles = peek(snapshot.vehicles)
    async with schema_connection(conninfo, schema) as conn:
        if await vehicle_loaded_before(conn, first):
            counts.skipped = True
            return counts
        async with snapshot_transaction(conn):
            counts.rows["persons"] = await _copy(conn, "persons", snapshot.persons, report)
            counts.rows["vehicles"] = await _copy(conn, "vehicles", vehicles, report)
            counts.rows["licences"] = await _copy(conn, "licences", snapshot.licences, report)
            counts.rows["violations"] = await _copy(conn, "violations", snapshot.violations, report)
    return counts
