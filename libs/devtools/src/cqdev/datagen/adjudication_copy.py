"""Bulk snapshot loader of adjudication's own tables with PostgreSQL COPY: its registry copy
(``vehicles``, ``licences``, ``violation_codes``) and ``violations``.

This is the documented bulk path behind ``python -m cqdev generate`` (Chongqing-scale
synthetic data; dev tooling, not part of the adjudication service): like restoring a
database snapshot it writes rows directly and **publishes no events** — no
``ViolationRecorded`` reaches the outbox, and the registry copy is not built from registry
events. The query service gets the same snapshot through its own loader
(:mod:`cqdev.datagen.query_copy`).

Rows follow adjudication's recording rules so the data looks as if each violation had been
recorded through ``RecordViolation``: the status comes from adjudication's own rule
(:func:`cqadjudication.domain.violations.violation_status`; a paid record must have been
decided); ``points`` is the code's second digit; ``request_hash`` is the
:class:`~cqadjudication.domain.violations.ViolationReport` fingerprint, so sending the same
source record through ``RecordViolation`` later is a replay (``created=false``), not a
conflict.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cqadjudication.domain.points import opened
from cqadjudication.domain.violations import (
    Procedure,
    Source,
    ViolationReport,
    violation_status,
)
from cqcommon.clock import SHANGHAI
from cqcommon.identifiers import PlateType, points_of_code

from cqdev.datagen import bulkcopy as bc

SCHEMA = "adjudication"


class VehicleInput(NamedTuple):
    vehicle_id: uuid.UUID
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: uuid.UUID


class LicenceInput(NamedTuple):
    licence_id: uuid.UUID
    person_id: uuid.UUID
    licence_no: str
    file_no: str
    licence_class: str
    first_issued_on: dt.date
    status: str


class PersonInput(NamedTuple):
    """The identity a face verification names (adjudication's ``persons`` copy)."""

    person_id: uuid.UUID
    name: str
    id_number: str


class LedgerInput(NamedTuple):
    """A licence's points as the registry has them: its ledger opens with them."""

    licence_id: uuid.UUID
    points: int
    first_issued_on: dt.date


class ViolationCodeInput(NamedTuple):
    code: str
    description_zh: str
    points: int
    fine_min_fen: int
    fine_max_fen: int


class ViolationInput(NamedTuple):
    """A violation as the enforcement system reported it, plus the ids it resolved to."""

    violation_id: uuid.UUID
    source_system: str
    source_record_id: str
    vehicle_id: uuid.UUID
    plate_type: str
    plate_number: str
    licence_id: uuid.UUID | None
    licence_no: str | None
    violation_code: str
    occurred_at: dt.datetime
    place: str
    fine_fen: int
    source: Source
    procedure: Procedure
    decision_no: str | None
    decision_date: dt.date | None
    paid: bool


@dataclass(frozen=True)
class AdjudicationSnapshot:
    """The tables to load, each an iterable of rows consumed once (constant memory)."""

    vehicles: Iterable[VehicleInput]
    licences: Iterable[LicenceInput]
    violation_codes: Iterable[ViolationCodeInput]
    violations: Iterable[ViolationInput]
    persons: Iterable[PersonInput] = ()
    ledgers: Iterable[LedgerInput] = ()
    #: "now" of the load: the day the ledgers' scoring cycles are computed for
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def violation_row(v: ViolationInput, descriptions: dict[str, str]) -> tuple[Any, ...]:
    """The ``violations`` COPY row of ``v`` (columns :data:`_VIOLATION_COLUMNS`)."""
    if v.occurred_at.tzinfo is None:
        raise ValueError(f"{v.source_record_id}: occurred_at must be timezone-aware")
    # The RecordViolation path sees occurred_at as UTC (protobuf Timestamp), and its
    # fingerprint prints the datetime: normalise so both give the same hash.
    occurred_at = v.occurred_at.astimezone(dt.UTC)
    report = ViolationReport(
        source_system=v.source_system,
        source_record_id=v.source_record_id,
        plate_type=PlateType(v.plate_type),
        plate_number=v.plate_number,
        licence_no=v.licence_no,
        violation_code=v.violation_code,
        occurred_at=occurred_at,
        place=v.place,
        fine_fen=v.fine_fen,
        source=v.source,
        procedure=v.procedure,
        decision_no=v.decision_no,
        decision_date=v.decision_date if v.decision_no else None,
    )
    if v.paid and v.decision_no is None:
        raise ValueError(f"{v.source_record_id}: a violation without a decision cannot be paid")
    try:
        description = descriptions[v.violation_code]
    except KeyError:
        raise ValueError(f"{v.source_record_id}: code {v.violation_code} not catalogued") from None
    return (
        v.violation_id,
        v.source_system,
        v.source_record_id,
        report.fingerprint(),
        v.vehicle_id,
        v.licence_id,
        v.violation_code,
        description,
        occurred_at,
        v.place,
        v.fine_fen,
        points_of_code(v.violation_code),
        v.source,
        v.procedure,
        violation_status(decided=v.decision_no is not None, paid=v.paid),
        report.decision_no,
        report.decision_date,
    )


def ledger_rows(ledgers: Iterable[LedgerInput], now: dt.datetime) -> Iterator[tuple[Any, ...]]:
    """``points_ledger`` rows, opened by adjudication's own rule
    (``cqadjudication.domain.points.opened``: the licence's current scoring cycle), exactly
    as the registry consumer opens a ledger from DriverRegistered; streamed."""
    today = now.astimezone(SHANGHAI).date()
    for ledger in ledgers:
        row, _first_entry = opened(
            str(ledger.licence_id),
            ledger.points,
            first_issued_on=ledger.first_issued_on,
            today=today,
            now=now,
        )
        yield (ledger.licence_id, row.points, row.cycle_start, row.cycle_end, None, now)


# ``opened``'s first entry (a "registry" entry of the opening points, none for 0 points),
# for every ledger this load opened: so points == sum(entries.delta) holds from the start.
_OPENING_ENTRIES = (
    "INSERT INTO points_entries (licence_id, delta, points_after, channel, cycle_start, at)"
    " SELECT l.licence_id, l.points, l.points, 'registry', l.cycle_start, l.updated_at"
    " FROM points_ledger l WHERE l.points > 0 AND l.updated_at = %s"
    " AND NOT EXISTS (SELECT 1 FROM points_entries e WHERE e.licence_id = l.licence_id)"
)


_PERSONS = bc.CopyTable("persons", PersonInput._fields, ("uuid", "text", "text"))
_LEDGERS = bc.CopyTable(
    "points_ledger",
    ("licence_id", "points", "cycle_start", "cycle_end", "external_change_at", "updated_at"),
    ("uuid", "int4", "date", "date", "timestamptz", "timestamptz"),
)
_VEHICLES = bc.CopyTable("vehicles", VehicleInput._fields, ("uuid", "text", "text", "text", "uuid"))
_LICENCES = bc.CopyTable(
    "licences", LicenceInput._fields, ("uuid", "uuid", "text", "text", "text", "date", "text")
)
_VIOLATIONS = bc.CopyTable(
    "violations",
    (
        "violation_id", "source_system", "source_record_id", "request_hash", "vehicle_id",
        "licence_id", "violation_code", "description_zh", "occurred_at", "place", "fine_fen",
        "points", "source", "procedure", "status", "decision_no", "decision_date",
    ),
    (
        *("uuid", "text", "text", "text", "uuid", "uuid", "text", "text", "timestamptz"),
        *("text", "int8", "int4", "text", "text", "text", "text", "date"),
    ),
)  # fmt: skip


async def copy_snapshot(
    conninfo: str,
    snapshot: AdjudicationSnapshot,
    progress: bc.Progress | None = None,
    *,
    schema: str = SCHEMA,
) -> bc.SnapshotCounts:
    """Load ``snapshot`` into adjudication's tables in one transaction; publishes no events.

    Violation codes already present (e.g. from the sandbox roster's import) are kept;
    every other row must be new. If the snapshot's first vehicle is already present the
    snapshot is taken as loaded (a re-run of the same ``generate``, found by plate) and nothing is written.
    """
    report = progress or bc.no_progress
    first, vehicles = bc.peek(snapshot.vehicles)

    async def load(conn: bc.Conn, counts: bc.SnapshotCounts) -> None:
        codes = list(snapshot.violation_codes)
        inserted = 0
        for c in codes:
            cur = await conn.execute(
                "INSERT INTO violation_codes"
                " (code, description_zh, points, fine_min_fen, fine_max_fen)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING",
                tuple(c),
            )
            inserted += cur.rowcount
        counts.rows["violation_codes"] = inserted
        report(f"{schema}.violation_codes", len(codes))
        # Descriptions as stored (a code imported earlier keeps its own text).
        cur = await conn.execute("SELECT code, description_zh FROM violation_codes")
        descriptions = {str(code): str(text) for code, text in await cur.fetchall()}
        await _VEHICLES.copy(conn, counts, vehicles, schema=schema, report=report)
        await _LICENCES.copy(conn, counts, snapshot.licences, schema=schema, report=report)
        await _PERSONS.copy(conn, counts, snapshot.persons, schema=schema, report=report)
        ledgers = ledger_rows(snapshot.ledgers, snapshot.now)
        await _LEDGERS.copy(conn, counts, ledgers, schema=schema, report=report)
        cur = await conn.execute(_OPENING_ENTRIES, (snapshot.now,))
        counts.rows["points_entries"] = cur.rowcount
        violations = (violation_row(v, descriptions) for v in snapshot.violations)
        await _VIOLATIONS.copy(conn, counts, violations, schema=schema, report=report)

    return await bc.load_snapshot(
        conninfo, schema, lambda conn: bc.vehicle_loaded_before(conn, first), load
    )
