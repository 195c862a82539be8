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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cqcommon.bulkcopy import (
    Conn,
    Progress,
    copy_rows,
    no_progress,
    peek,
    schema_connection,
    snapshot_transaction,
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


# A violation's shown columns start as what was recorded (see migration 0002): the
# ``recorded_*`` copies are appended to each violation row.
_RECORDED_COLUMNS = (
    ("recorded_status", "text"),
    ("recorded_licence_id", "uuid"),
    ("recorded_decision_no", "text"),
    ("recorded_decision_date", "date"),
    ("recorded_fine_fen", "int8"),
    ("recorded_points", "int4"),
)


def _with_recorded(rows: Iterable[ViolationInput]) -> Iterable[tuple[Any, ...]]:
    for r in rows:
        yield (*r, r.status, r.licence_id, r.decision_no, r.decision_date, r.fine_fen, r.points)


async def _copy(conn: Conn, table: str, rows: Iterable[tuple[Any, ...]], report: Progress) -> int:
    """COPY ``rows`` into ``table`` (columns = the input tuple type's fields)."""
    row_type, types = _TABLES[table]
    columns = list(row_type._fields)  # type: ignore[attr-defined]
    if table == "violations":
        columns += [name for name, _ in _RECORDED_COLUMNS]
        types = types + [kind for _, kind in _RECORDED_COLUMNS]
        rows = _with_recorded(rows)  # type: ignore[arg-type]
    return await copy_rows(conn, table, columns, types, rows, label=f"query.{table}", report=report)


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
    report = progress or no_progress
    counts = QueryCounts()
    first, vehicles = peek(snapshot.vehicles)
    async with schema_connection(conninfo, schema) as conn:
        if first is not None:
            cur = await conn.execute(
                "SELECT 1 FROM vehicles WHERE vehicle_id = %s", (first.vehicle_id,)
            )
            if await cur.fetchone() is not None:
                counts.skipped = True
                return counts
        async with snapshot_transaction(conn):
            counts.rows["persons"] = await _copy(conn, "persons", snapshot.persons, report)
            counts.rows["vehicles"] = await _copy(conn, "vehicles", vehicles, report)
            counts.rows["licences"] = await _copy(conn, "licences", snapshot.licences, report)
            counts.rows["violations"] = await _copy(conn, "violations", snapshot.violations, report)
    return counts
