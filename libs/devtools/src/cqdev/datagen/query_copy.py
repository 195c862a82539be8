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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from cqdev.datagen import bulkcopy as bc

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


def _with_recorded(rows: Iterable[ViolationInput]) -> Iterator[tuple[Any, ...]]:
    # a violation's shown columns start as what was recorded (migration 0002)
    for r in rows:
        yield (*r, r.status, r.licence_id, r.decision_no, r.decision_date, r.fine_fen, r.points)


_PERSONS = bc.CopyTable("persons", PersonInput._fields, ("uuid", "text", "text", "text", "text"))
_VEHICLES = bc.CopyTable(
    "vehicles", VehicleInput._fields, ("uuid", "text", "text", "text", "uuid", "text")
)
_LICENCES = bc.CopyTable(
    "licences",
    LicenceInput._fields,
    ("uuid", "uuid", "text", "text", "text", "date", "int4", "text"),
)
_VIOLATIONS = bc.CopyTable(
    "violations",
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
)


async def copy_snapshot(
    conninfo: str,
    snapshot: QuerySnapshot,
    progress: bc.Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> bc.SnapshotCounts:
    """Load ``snapshot`` into the read model in one transaction.

    Every row must be new. If the snapshot's first vehicle is already present the
    snapshot is taken as loaded (a re-run of the same ``generate``, found by plate) and nothing is written.
    """
    report = progress or bc.no_progress
    first, vehicles = bc.peek(snapshot.vehicles)

    async def load(conn: bc.Conn, counts: bc.SnapshotCounts) -> None:
        await _PERSONS.copy(conn, counts, snapshot.persons, schema=schema, report=report)
        await _VEHICLES.copy(conn, counts, vehicles, schema=schema, report=report)
        await _LICENCES.copy(conn, counts, snapshot.licences, schema=schema, report=report)
        violations = _with_recorded(snapshot.violations)
        await _VIOLATIONS.copy(conn, counts, violations, schema=schema, report=report)

    return await bc.load_snapshot(
        conninfo, schema, lambda conn: bc.vehicle_loaded_before(conn, first), load
    )
