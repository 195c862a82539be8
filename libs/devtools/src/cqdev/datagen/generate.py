"""``python -m cqdev.datagen`` (behind ``make generate VEHICLES=N`` / ``python -m cqdev
generate``): the **bulk snapshot path** for Chongqing-scale synthetic data (millions of
vehicles).

Like restoring a database, it applies the registry, adjudication, query and follow
migrations and streams the synthetic generator (:mod:`cqdev.datagen.synthetic`) into each
service's own tables through that service's bulk loader (:mod:`~cqdev.datagen.registry_copy`,
:mod:`~cqdev.datagen.adjudication_copy`, :mod:`~cqdev.datagen.query_copy`,
:mod:`~cqdev.datagen.follow_copy`) with PostgreSQL COPY. It **publishes no events**: the
four schemas are written consistently from one generator instead (the follow service's
registry copy from the very registry events of the same records, through its consumer's
own handlers).

Every run draws a fresh random id key (:attr:`GenerateOptions.id_key`) shared by the
four loaders, so ids agree across the schemas but cannot be recomputed from the seed or
from anyone's personal data. A re-run with the same seed finds its first records by
natural key (VIN, plate) and skips.

The sandbox roster (R-SBX-1) is not loaded here: it is the registry's own
``python -m cqregistry load-sandbox``, which ``make run`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from cqadjudication.domain.violations import violation_status
from cqcommon.settings import Settings
from cqregistry.domain.catalogue import violation_code_catalogue
from cqregistry.domain.imports import (
    LICENCE_STATE,
    code_to_entry,
    licence_to_entry,
    person_to_entry,
    vehicle_to_entry,
)
from cqregistry.domain.model import SHANGHAI, Licence
from cqregistry.entrypoints.mappers import entry_to_proto
from cqtraffic.registry.v1 import registry_pb2 as reg

from cqdev.datagen import adjudication_copy as ab
from cqdev.datagen import follow_copy as fb
from cqdev.datagen import query_copy as qb
from cqdev.datagen import registry_copy as rb
from cqdev.datagen.synthetic import (
    CHUNK,
    ID_KEY_BYTES,
    PersonRow,
    iter_rows_for_copy,
    licence_from_row,
    person_from_row,
    vehicle_from_row,
)

SYNTHETIC_SOURCE_SYSTEM = "synthetic"
JOIN_BLOCK = CHUNK * 8  # vehicles whose plates are held in memory while their violations stream


def new_id_key() -> bytes:
    """A fresh random id key for one data set (never stored)."""
    return secrets.token_bytes(ID_KEY_BYTES)


@dataclass(frozen=True)
class GenerateOptions:
    """One data set: its size, seed, reference day and random id key (see the module doc)."""

    vehicles: int
    violations_per_vehicle: float = 1.5
    seed: int = 1
    today: dt.date = field(default_factory=lambda: dt.datetime.now(SHANGHAI).date())
    id_key: bytes = field(default_factory=new_id_key, repr=False)


@dataclass
class GenerateSummary:
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _rows(
    opts: GenerateOptions, table: str, start: int = 0, stop: int | None = None
) -> Iterator[tuple[object, ...]]:
    return iter_rows_for_copy(
        table,
        seed=opts.seed,
        id_key=opts.id_key,
        vehicles=opts.vehicles,
        today=opts.today,
        violations_per_vehicle=opts.violations_per_vehicle,
        start=start,
        stop=stop,
    )


def _licences(opts: GenerateOptions) -> Iterator[Licence]:
    for row in _rows(opts, "licences"):
        yield licence_from_row(row)  # type: ignore[arg-type]


def _licence_head(lic: Licence) -> tuple[uuid.UUID, uuid.UUID, str, str, str, dt.date]:
    """What every service's licence copy starts with: ids, numbers, class, first issue."""
    return (
        lic.licence_id,
        lic.person_id,
        lic.licence_no,
        lic.file_no,
        lic.licence_class.value,
        lic.first_issued_on,
    )


def registry_people(opts: GenerateOptions) -> Iterator[rb.RegistryRow]:
    """The synthetic people as the registry stores them (streamed), under their ids."""
    for row in _rows(opts, "people"):
        p = person_from_row(row)  # type: ignore[arg-type]
        yield rb.RegistryRow(person_to_entry(p, pin=False), str(p.person_id))


def registry_vehicles(opts: GenerateOptions) -> Iterator[rb.RegistryRow]:
    """The synthetic vehicles as the registry stores them (streamed), naming their owners."""
    # vehicle i belongs to person i: the two streams advance together
    for vrow, prow in zip(_rows(opts, "vehicles"), _rows(opts, "people"), strict=True):
        v = vehicle_from_row(vrow)  # type: ignore[arg-type]
        owner = person_from_row(prow)  # type: ignore[arg-type]
        entry = vehicle_to_entry(v, owner.id_number, pin=False)
        yield rb.RegistryRow(entry, str(v.vehicle_id), str(owner.person_id))


def registry_licences(opts: GenerateOptions) -> Iterator[rb.RegistryRow]:
    """The synthetic licences as the registry stores them (streamed), naming their holders."""
    for lic in _licences(opts):
        driver = licence_to_entry(lic, pin=False)
        yield rb.RegistryRow(driver, str(lic.licence_id), str(lic.person_id))


def registry_rows(opts: GenerateOptions) -> Iterator[rb.RegistryRow]:
    """The synthetic people, vehicles and licences as the registry stores them (streamed):
    each under its natural key, with its id, naming its owner or holder by person id."""
    yield from registry_people(opts)
    yield from registry_vehicles(opts)
    yield from registry_licences(opts)


def synthetic_records(opts: GenerateOptions) -> Iterator[reg.RegistryRecord]:
    """The same records as ImportRecords records (natural keys, no ids), streamed."""
    for row in registry_rows(opts):
        yield entry_to_proto(row.entry)


@dataclass(frozen=True, slots=True)
class JoinedViolation:
    """A generated violation with its vehicle's plate and its driver's licence number."""

    row: tuple[object, ...]
    plate_type: str
    plate_number: str
    licence_no: str | None


def joined_violations(opts: GenerateOptions) -> Iterator[JoinedViolation]:
    """Violations with the plate and licence number they are reported with.

    Violations of vehicle ``i`` only involve vehicle ``i`` and licence ``i``, so a block of
    vehicles and licences is regenerated beside its violations: constant memory.
    """
    for lo in range(0, opts.vehicles, JOIN_BLOCK):
        hi = min(lo + JOIN_BLOCK, opts.vehicles)
        plates = {r[0]: (str(r[1]), str(r[2])) for r in _rows(opts, "vehicles", lo, hi)}
        licence_nos = {r[0]: str(r[2]) for r in _rows(opts, "licences", lo, hi)}
        for row in _rows(opts, "violations", lo, hi):
            ptype, plate = plates[row[2]]
            yield JoinedViolation(row, ptype, plate, licence_nos.get(row[3]))


def _status(row: tuple[object, ...]) -> str:
    """Adjudication's status rule (R-Q-3), from its domain: one rule for every copy."""
    return violation_status(decided=row[12] is not None, paid=bool(row[14]))


def registry_snapshot(opts: GenerateOptions) -> rb.RegistrySnapshot:
    return rb.RegistrySnapshot(
        records=registry_rows(opts),
        shared=[code_to_entry(c) for c in violation_code_catalogue()],
    )


def adjudication_snapshot(opts: GenerateOptions) -> ab.AdjudicationSnapshot:
    def vehicles() -> Iterator[ab.VehicleInput]:
        for r in _rows(opts, "vehicles"):
            yield ab.VehicleInput(r[0], r[1], r[2], r[3], r[4])  # type: ignore[arg-type]

    def licences() -> Iterator[ab.LicenceInput]:
        for lic in _licences(opts):
            yield ab.LicenceInput(*_licence_head(lic), LICENCE_STATE[lic.status])

    def violations() -> Iterator[ab.ViolationInput]:
        for j in joined_violations(opts):
            r = j.row
            yield ab.ViolationInput(
                r[0],  # type: ignore[arg-type]
                SYNTHETIC_SOURCE_SYSTEM,
                r[1],  # type: ignore[arg-type]
                r[2],  # type: ignore[arg-type]
                j.plate_type,
                j.plate_number,
                r[3],  # type: ignore[arg-type]
                j.licence_no if r[3] is not None else None,
                r[4],  # type: ignore[arg-type]
                r[5],  # type: ignore[arg-type]
                r[6],  # type: ignore[arg-type]
                r[7],  # type: ignore[arg-type]
                r[9],  # type: ignore[arg-type]
                r[10],  # type: ignore[arg-type]
                r[12],  # type: ignore[arg-type]
                r[13],  # type: ignore[arg-type]
                bool(r[14]),
            )

    def persons() -> Iterator[ab.PersonInput]:
        for r in _rows(opts, "people"):
            yield ab.PersonInput(r[0], r[1], r[2])  # type: ignore[arg-type]

    def ledgers() -> Iterator[ab.LedgerInput]:
        for lic in _licences(opts):
            yield ab.LedgerInput(lic.licence_id, lic.points, lic.first_issued_on)

    return ab.AdjudicationSnapshot(
        vehicles=vehicles(),
        licences=licences(),
        persons=persons(),
        ledgers=ledgers(),
        violation_codes=[
            ab.ViolationCodeInput(
                c.code, c.description_zh, c.points, c.fine_min_fen, c.fine_max_fen
            )
            for c in violation_code_catalogue()
        ],
        violations=violations(),
    )


def query_snapshot(opts: GenerateOptions) -> qb.QuerySnapshot:
    descriptions = {c.code: c.description_zh for c in violation_code_catalogue()}

    def persons() -> Iterator[qb.PersonInput]:
        for r in _rows(opts, "people"):
            row: PersonRow = r  # type: ignore[assignment]
            yield qb.PersonInput(*row)

    def vehicles() -> Iterator[qb.VehicleInput]:
        for r in _rows(opts, "vehicles"):
            yield qb.VehicleInput(r[0], r[1], r[2], r[3], r[4], r[6])  # type: ignore[arg-type]

    def licences() -> Iterator[qb.LicenceInput]:
        for lic in _licences(opts):
            yield qb.LicenceInput(*_licence_head(lic), lic.points, LICENCE_STATE[lic.status])

    def violations() -> Iterator[qb.ViolationInput]:
        for j in joined_violations(opts):
            r = j.row
            occurred = r[5]
            assert isinstance(occurred, dt.datetime)
            yield qb.ViolationInput(
                r[0],  # type: ignore[arg-type]
                r[2],  # type: ignore[arg-type]
                j.plate_type,
                j.plate_number,
                r[3],  # type: ignore[arg-type]
                str(r[4]),
                descriptions[str(r[4])],
                occurred.astimezone(dt.UTC),
                str(r[6]),
                r[7],  # type: ignore[arg-type]
                r[8],  # type: ignore[arg-type]
                str(r[9]),
                str(r[10]),
                _status(r),
                r[12],  # type: ignore[arg-type]
                r[13],  # type: ignore[arg-type]
            )

    return qb.QuerySnapshot(
        persons=persons(), vehicles=vehicles(), licences=licences(), violations=violations()
    )


def follow_snapshot(opts: GenerateOptions) -> fb.FollowSnapshot:
    """The follow service's registry copy: the registry's own events of the same records
    (what its consumer would be given), streamed."""
    return fb.FollowSnapshot(
        persons=(r.event() for r in registry_people(opts)),
        vehicles=(r.event() for r in registry_vehicles(opts)),
        licences=(r.event() for r in registry_licences(opts)),
    )


def estimated_rows(opts: GenerateOptions) -> int:
    """Rows all four loaders will write, for the progress bar (≈85 % hold a licence;
    adjudication also copies the persons and opens a points ledger per licence; follow
    copies people, vehicles and licences)."""
    n, rate = opts.vehicles, opts.violations_per_vehicle
    return int(n * (2.85 + 2.85 + 1.85 + 1.85 + 2.85 + 2 * rate)) + 70


async def migrate_all(conninfo: str) -> list[str]:
    """Apply the registry, adjudication, query and follow migrations (each service's own
    folder)."""
    from cqadjudication.wiring import SPEC as ADJUDICATION
    from cqcommon.migrations import apply_migrations
    from cqfollow.wiring import SPEC as FOLLOW
    from cqquery.wiring import SPEC as QUERY
    from cqregistry.wiring import SPEC as REGISTRY

    applied: list[str] = []
    for spec in (REGISTRY, ADJUDICATION, QUERY, FOLLOW):
        applied += await apply_migrations(conninfo, spec.schema, spec.migrations_dir)
    return applied


async def generate(
    conninfo: str,
    opts: GenerateOptions,
    progress: Callable[[str, int], None] | None = None,
    *,
    schemas: tuple[str, str, str, str] = ("registry", "adjudication", "query", "follow"),
) -> GenerateSummary:
    """Migrate, then COPY the synthetic data set into the four services' tables.

    The loaders run concurrently (each on its own connection and transaction, all with the
    same ``opts`` and so the same id key), so the generator's Python work overlaps with
    PostgreSQL's. No events are published.
    """
    await migrate_all(conninfo)
    started = time.perf_counter()
    registry, *others = await asyncio.gather(
        rb.copy_snapshot(conninfo, registry_snapshot(opts), progress, schema=schemas[0]),
        ab.copy_snapshot(conninfo, adjudication_snapshot(opts), progress, schema=schemas[1]),
        qb.copy_snapshot(conninfo, query_snapshot(opts), progress, schema=schemas[2]),
        fb.copy_snapshot(conninfo, follow_snapshot(opts), progress, schema=schemas[3]),
    )
    summary = GenerateSummary(seconds=time.perf_counter() - started)
    if registry.skipped:
        summary.skipped.append("registry")
    for kind, n in registry.rows.items():
        summary.rows[f"registry.master_records[{kind}]"] = n
    for name, counts in zip(("adjudication", "query", "follow"), others, strict=True):
        if counts.skipped:
            summary.skipped.append(name)
        for table, n in counts.rows.items():
            summary.rows[f"{name}.{table}"] = n
    return summary


# -- command line -----------------------------------------------------------------------
_HELP = (
    "bulk snapshot of synthetic Chongqing-like data: applies the registry, adjudication,"
    " query and follow migrations, then COPYs people, vehicles, licences, the code catalogue and"
    " violations straight into each service's own tables. Like restoring a database, it"
    " PUBLISHES NO EVENTS (no outbox rows); re-running with the same seed skips what is"
    " already loaded. Ids come from a random key drawn per run."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cqdev.datagen", description=_HELP)
    parser.add_argument("--vehicles", type=int, required=True, help="synthetic vehicles (≈6M = CQ)")
    parser.add_argument(
        "--violations-per-vehicle",
        type=float,
        default=1.5,
        help="mean violations per vehicle (default 1.5)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=None,
        help="the day dates are relative to (default: today in Asia/Shanghai)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs in the lock

    opts = GenerateOptions(
        vehicles=args.vehicles,
        violations_per_vehicle=args.violations_per_vehicle,
        seed=args.seed,
        today=args.today or dt.datetime.now(SHANGHAI).date(),
    )
    bar = tqdm(
        total=estimated_rows(opts),
        unit="rows",
        unit_scale=True,
        desc="generate",
        disable=args.no_progress,
    )

    def progress(_table: str, n: int) -> None:
        bar.update(n)

    try:
        summary = asyncio.run(generate(settings.database_url, opts, progress))
    finally:
        bar.close()
    for table, n in sorted(summary.rows.items()):
        print(f"  {table:<45} {n:>12,}", file=out)
    if summary.skipped:
        print(f"already loaded, skipped: {', '.join(summary.skipped)}", file=out)
    rate = summary.total_rows / summary.seconds if summary.seconds else 0.0
    print(
        f"generate: {summary.total_rows:,} rows in {summary.seconds:.1f}s ({rate:,.0f} rows/s);"
        " no events published (bulk snapshot)",
        file=out,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.vehicles < 0:
        print("generate: --vehicles must be >= 0", file=sys.stderr)
        return 2
    return _run(args, Settings(), sys.stdout)
