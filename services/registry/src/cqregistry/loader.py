"""``python -m cqregistry load-sandbox`` and ``python -m cqregistry generate``.

``load-sandbox`` (R-SBX-1) loads the SANDBOX.md roster through the running services, the
way real data arrives: the people, vehicles, licences and the violation-code catalogue go
through ``RegistryService.ImportRecords`` (which publishes registry events), then each
roster violation goes through ``AdjudicationService.RecordViolation`` with source system
``sandbox`` and the roster's own record id, so a second run changes nothing (the registry
answers "unchanged", adjudication answers ``created=false``). Adjudication learns vehicles,
licences and codes from registry events, asynchronously, so "not found yet" answers are
retried with backoff for about a minute before the load fails.

``generate`` is the **bulk snapshot path** for Chongqing-scale synthetic data (millions
of vehicles): like restoring a database, it applies the migrations and streams the
deterministic generator (:mod:`cqregistry.generator`) into each service's own tables
through that service's bulk loader (``cqregistry.bulk``, ``cqadjudication.bulk``,
``cqquery.bulk``) with PostgreSQL COPY. It **publishes no events**: the three schemas are
written consistently from one generator instead.

The pure parts (roster → registry records and RecordViolation requests) are separate from
the I/O so they can be tested without a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, TypeVar

from cqadjudication import bulk as ab
from cqcommon.errors import DomainError
from cqcommon.grpc_client import call, make_channel
from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqcommon.settings import Settings
from cqquery import bulk as qb
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as adj_grpc
from cqtraffic.registry.v1 import registry_pb2 as reg
from cqtraffic.registry.v1 import registry_pb2_grpc as reg_grpc

from cqregistry import bulk as rb
from cqregistry.generator import (
    CHUNK,
    SHANGHAI,
    Licence,
    LicenceStatus,
    Person,
    Vehicle,
    Violation,
    ViolationCode,
    ViolationStatus,
    iter_rows_for_copy,
    licence_from_row,
    person_from_row,
    vehicle_from_row,
    violation_code_catalogue,
)
from cqregistry.roster import SandboxRoster, format_roster_vin_table, sandbox_roster
from cqregistry.service_layer.import_records import MAX_BATCH

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub
    from cqtraffic.registry.v1.registry_pb2_grpc import RegistryServiceAsyncStub

SANDBOX_SOURCE_SYSTEM = "sandbox"
SYNTHETIC_SOURCE_SYSTEM = "synthetic"
# Adjudication answers these until the registry events about the vehicle, licence or
# code have reached its copy of the registry.
NOT_YET_KNOWN = frozenset({"VEHICLE_NOT_FOUND", "UNKNOWN_VIOLATION_CODE", "LICENCE_NOT_FOUND"})
UNREACHABLE = "SERVICE_UNAVAILABLE"
RETRY_BUDGET_S = 60.0
IMPORT_DEADLINE_S = 60.0  # a 5000-record batch is one transaction: allow it time
# The registry protocol's licence states; the generator's "over_points" licence is held
# by the police until the driver re-qualifies, which the protocol calls suspended.
LICENCE_STATUS: dict[LicenceStatus, str] = {
    LicenceStatus.NORMAL: "valid",
    LicenceStatus.OVER_POINTS: "suspended",
    LicenceStatus.SUSPENDED: "suspended",
}


class LoadError(RuntimeError):
    """The sandbox load could not finish; the message says what to check."""


# -- pure: records and requests ---------------------------------------------------------
def person_record(p: Person) -> reg.RegistryRecord:
    return reg.RegistryRecord(
        person=reg.PersonRegistered(
            person_id=str(p.person_id),
            name=p.name,
            id_number=p.id_number,
            phone=p.phone,
            alipay_user_id=p.alipay_user_id or "",
        )
    )


def vehicle_record(v: Vehicle) -> reg.RegistryRecord:
    return reg.RegistryRecord(
        vehicle=reg.VehicleRegistered(
            vehicle_id=str(v.vehicle_id),
            plate_type=plate_type_to_proto(v.plate_type),
            plate_number=v.plate_number,
            vin=v.vin,
            owner_person_id=str(v.owner_person_id),
            vehicle_kind=v.vehicle_kind.value,
        )
    )


def driver_record(lic: Licence) -> reg.RegistryRecord:
    return reg.RegistryRecord(
        driver=reg.DriverRegistered(
            licence_id=str(lic.licence_id),
            person_id=str(lic.person_id),
            licence_no=lic.licence_no,
            file_no=lic.file_no,
            licence_class=lic.licence_class.value,
            first_issued_on=date_to_proto(lic.first_issued_on),
            points=lic.points,
            status=LICENCE_STATUS[lic.status],
        )
    )


def code_record(c: ViolationCode) -> reg.RegistryRecord:
    return reg.RegistryRecord(
        violation_code=reg.ViolationCodeRegistered(
            code=c.code,
            description_zh=c.description_zh,
            points=c.points,
            fine_min_fen=c.fine_min_fen,
            fine_max_fen=c.fine_max_fen,
        )
    )


def roster_records(roster: SandboxRoster) -> list[reg.RegistryRecord]:
    """Every registry record of the sandbox: the code catalogue, people, vehicles, licences."""
    return [
        *(code_record(c) for c in violation_code_catalogue()),
        *(person_record(p) for p in roster.people),
        *(vehicle_record(v) for v in roster.vehicles),
        *(driver_record(lic) for lic in roster.licences),
    ]


_T = TypeVar("_T")


def batches(items: Sequence[_T], size: int = MAX_BATCH) -> Iterator[Sequence[_T]]:
    """Consecutive slices of at most ``size`` items (the import takes ≤ 5000 a call)."""
    if size < 1:
        raise ValueError("batch size must be positive")
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class PlannedViolation:
    """One roster violation as a RecordViolation request, with a note for the summary."""

    request: adj.RecordViolationRequest
    note: str | None = None


def violation_request(
    v: Violation, vehicle: Vehicle, licence: Licence | None, source_system: str
) -> adj.RecordViolationRequest:
    """The RecordViolation request reporting ``v`` (a paid one is reported decided-unpaid)."""
    req = adj.RecordViolationRequest(
        source_system=source_system,
        source_record_id=v.source_record_id,
        plate_type=plate_type_to_proto(vehicle.plate_type),
        plate_number=vehicle.plate_number,
        licence_no=licence.licence_no if licence is not None else "",
        violation_code=v.code,
        occurred_at=timestamp_to_proto(v.occurred_at),
        place=v.place,
        fine_fen=v.fine_fen,
        source=SOURCES[v.source.value],
        procedure=PROCEDURES[v.procedure.value],
    )
    if v.decision_no is not None and v.decision_date is not None:
        req.decision_no = v.decision_no
        req.decision_date.CopyFrom(date_to_proto(v.decision_date))
    return req


def violation_requests(roster: SandboxRoster) -> list[PlannedViolation]:
    """A request per roster violation, in roster order (pure, no I/O)."""
    vehicles = {v.vehicle_id: v for v in roster.vehicles}
    licences = {lic.licence_id: lic for lic in roster.licences}
    planned: list[PlannedViolation] = []
    for v in roster.violations:
        licence = licences[v.licence_id] if v.licence_id is not None else None
        note = None
        if v.status is ViolationStatus.PAID:
            # Payments belong to the payment service, which does not record any yet.
            note = (
                f"{v.source_record_id}: paid in the roster; recorded as decided-unpaid "
                "until the payment service exists"
            )
        request = violation_request(v, vehicles[v.vehicle_id], licence, SANDBOX_SOURCE_SYSTEM)
        planned.append(PlannedViolation(request, note))
    return planned


# -- I/O: the sandbox load through the services -----------------------------------------
@dataclass
class RetryBudget:
    """Total time the whole load may spend waiting for other services to catch up."""

    remaining_s: float = RETRY_BUDGET_S
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0

    async def run(
        self, attempt: Callable[[], Awaitable[_T]], retry_on: frozenset[str], what: str
    ) -> _T:
        delay = self.first_delay_s
        while True:
            try:
                return await attempt()
            except DomainError as exc:
                if exc.code not in retry_on:
                    raise
                if self.remaining_s <= 0:
                    raise LoadError(
                        f"{what}: still {exc.code} after waiting {RETRY_BUDGET_S:.0f}s"
                        f" ({exc.details or exc.message_en}). " + _HINTS.get(exc.code, "")
                    ) from exc
                wait = min(delay, self.remaining_s)
                self.remaining_s -= wait
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.max_delay_s)


_HINTS = {
    "VEHICLE_NOT_FOUND": "Are the registry relay and adjudication's registry consumer running?",
    "LICENCE_NOT_FOUND": "Are the registry relay and adjudication's registry consumer running?",
    "UNKNOWN_VIOLATION_CODE": "Are the registry relay and adjudication's consumer running?",
    UNREACHABLE: "Is the service running at the configured *_SERVICE_ADDR?",
}


@dataclass
class SandboxSummary:
    records: int = 0
    batches: int = 0
    changed: int = 0
    unchanged: int = 0
    created: int = 0
    replayed: int = 0
    kept: int = 0
    refused: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"registry: {self.records} records in {self.batches} batch(es):"
            f" {self.changed} changed, {self.unchanged} unchanged",
            f"adjudication: {self.created + self.replayed + self.kept + self.refused}"
            f" roster violations: {self.created} created, {self.replayed} already recorded,"
            f" {self.kept} kept from an earlier day, {self.refused} refused",
        ]
        out += [f"note: {n}" for n in self.notes]
        return out


async def load_sandbox(
    settings: Settings,
    *,
    today: dt.date,
    budget: RetryBudget | None = None,
) -> SandboxSummary:
    """Import the roster's registry records, then record its violations (idempotent)."""
    budget = budget or RetryBudget()
    roster = sandbox_roster(today)
    summary = SandboxSummary()
    deadline = settings.grpc_deadline_s
    records = roster_records(roster)
    registry_channel = make_channel(settings.registry_service_addr)
    adjudication_channel = make_channel(settings.adjudication_service_addr)
    try:
        registry: RegistryServiceAsyncStub = reg_grpc.RegistryServiceStub(registry_channel)
        for batch in batches(records):
            request = reg.ImportRecordsRequest(records=list(batch))
            response = await budget.run(
                lambda request=request: call(  # type: ignore[misc]
                    registry.ImportRecords,
                    request,
                    timeout_s=max(deadline, IMPORT_DEADLINE_S),
                ),
                frozenset({UNREACHABLE}),
                f"registry at {settings.registry_service_addr}",
            )
            summary.batches += 1
            summary.records += len(batch)
            summary.changed += response.changed
            summary.unchanged += response.unchanged
        adjudication: AdjudicationServiceAsyncStub = adj_grpc.AdjudicationServiceStub(
            adjudication_channel
        )
        for planned in violation_requests(roster):
            await _record(adjudication, planned, budget, deadline, summary)
    finally:
        await registry_channel.close(None)
        await adjudication_channel.close(None)
    return summary


async def _record(
    stub: AdjudicationServiceAsyncStub,
    planned: PlannedViolation,
    budget: RetryBudget,
    deadline_s: float,
    summary: SandboxSummary,
) -> None:
    req = planned.request
    try:
        response: adj.RecordViolationResponse = await budget.run(
            lambda: call(stub.RecordViolation, req, timeout_s=deadline_s),
            NOT_YET_KNOWN | {UNREACHABLE},
            f"violation {req.source_record_id} ({req.plate_number})",
        )
    except DomainError as exc:
        if exc.code == "SOURCE_RECORD_CONFLICT":
            # Roster dates are relative to the day of loading: a record loaded on an
            # earlier day keeps its first content (the legal record is never rewritten).
            summary.kept += 1
            summary.notes.append(
                f"{req.source_record_id}: recorded on an earlier day with other dates; kept"
            )
            return
        if exc.code == "DECISION_REQUIRED":
            # SANDBOX.md's undecided non-site record over 200 yuan; adjudication's
            # recording rule asks a decision of every general-procedure record.
            summary.refused += 1
            summary.notes.append(
                f"{req.source_record_id}: refused by adjudication (DECISION_REQUIRED:"
                " undecided general-procedure record); not loaded"
            )
            return
        raise LoadError(
            f"violation {req.source_record_id} ({req.plate_number}): {exc.code}"
            f" {exc.details or exc.message_en}"
        ) from exc
    if response.created:
        summary.created += 1
    else:
        summary.replayed += 1
    if planned.note is not None and response.created:
        summary.notes.append(planned.note)


# -- generate: the bulk snapshot --------------------------------------------------------
JOIN_BLOCK = CHUNK * 8  # vehicles whose plates are held in memory while their violations stream


@dataclass(frozen=True)
class GenerateOptions:
    vehicles: int
    violations_per_vehicle: float = 1.5
    seed: int = 1
    today: dt.date = field(default_factory=lambda: dt.datetime.now(SHANGHAI).date())


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
        vehicles=opts.vehicles,
        today=opts.today,
        violations_per_vehicle=opts.violations_per_vehicle,
        start=start,
        stop=stop,
    )


def synthetic_records(opts: GenerateOptions) -> Iterator[reg.RegistryRecord]:
    """The synthetic people, vehicles and licences as registry records (streamed)."""
    for row in _rows(opts, "people"):
        yield person_record(person_from_row(row))  # type: ignore[arg-type]
    for row in _rows(opts, "vehicles"):
        yield vehicle_record(vehicle_from_row(row))  # type: ignore[arg-type]
    for row in _rows(opts, "licences"):
        yield driver_record(licence_from_row(row))  # type: ignore[arg-type]


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
    decided, paid = row[12] is not None, bool(row[14])
    return ("paid" if paid else "handled_unpaid") if decided else "unhandled"


def registry_snapshot(opts: GenerateOptions) -> rb.RegistrySnapshot:
    return rb.RegistrySnapshot(
        records=synthetic_records(opts),
        shared=[code_record(c) for c in violation_code_catalogue()],
    )


def adjudication_snapshot(opts: GenerateOptions) -> ab.AdjudicationSnapshot:
    def vehicles() -> Iterator[ab.VehicleInput]:
        for r in _rows(opts, "vehicles"):
            yield ab.VehicleInput(r[0], r[1], r[2], r[3], r[4])  # type: ignore[arg-type]

    def licences() -> Iterator[ab.LicenceInput]:
        for r in _rows(opts, "licences"):
            lic = licence_from_row(r)  # type: ignore[arg-type]
            yield ab.LicenceInput(
                lic.licence_id,
                lic.person_id,
                lic.licence_no,
                lic.file_no,
                lic.licence_class.value,
                lic.first_issued_on,
                LICENCE_STATUS[lic.status],
            )

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

    return ab.AdjudicationSnapshot(
        vehicles=vehicles(),
        licences=licences(),
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
            yield qb.PersonInput(*r)  # type: ignore[arg-type]

    def vehicles() -> Iterator[qb.VehicleInput]:
        for r in _rows(opts, "vehicles"):
            yield qb.VehicleInput(r[0], r[1], r[2], r[3], r[4], r[6])  # type: ignore[arg-type]

    def licences() -> Iterator[qb.LicenceInput]:
        for r in _rows(opts, "licences"):
            lic = licence_from_row(r)  # type: ignore[arg-type]
            yield qb.LicenceInput(
                lic.licence_id,
                lic.person_id,
                lic.licence_no,
                lic.file_no,
                lic.licence_class.value,
                lic.first_issued_on,
                lic.points,
                LICENCE_STATUS[lic.status],
            )

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


def estimated_rows(opts: GenerateOptions) -> int:
    """Rows all three loaders will write, for the progress bar (≈85 % hold a licence)."""
    n, rate = opts.vehicles, opts.violations_per_vehicle
    return int(n * (2.85 + 2.85 + 1.85 + 2 * rate)) + 70


async def migrate_all(conninfo: str) -> list[str]:
    """Apply the registry, adjudication and query migrations (each service's own folder)."""
    from cqadjudication.wiring import SPEC as ADJUDICATION
    from cqcommon.migrations import apply_migrations
    from cqquery.wiring import SPEC as QUERY

    from cqregistry.wiring import SPEC as REGISTRY

    applied: list[str] = []
    for spec in (REGISTRY, ADJUDICATION, QUERY):
        applied += await apply_migrations(conninfo, spec.schema, spec.migrations_dir)
    return applied


async def generate(
    conninfo: str,
    opts: GenerateOptions,
    progress: Callable[[str, int], None] | None = None,
    *,
    schemas: tuple[str, str, str] = ("registry", "adjudication", "query"),
) -> GenerateSummary:
    """Migrate, then COPY the synthetic data set into the three services' tables.

    The three loaders run concurrently (each on its own connection and transaction), so
    the generator's Python work overlaps with PostgreSQL's. No events are published.
    """
    await migrate_all(conninfo)
    started = time.perf_counter()
    r_counts, a_counts, q_counts = await asyncio.gather(
        rb.copy_snapshot(conninfo, registry_snapshot(opts), progress, schema=schemas[0]),
        ab.copy_snapshot(conninfo, adjudication_snapshot(opts), progress, schema=schemas[1]),
        qb.copy_snapshot(conninfo, query_snapshot(opts), progress, schema=schemas[2]),
    )
    summary = GenerateSummary(seconds=time.perf_counter() - started)
    for name, counts, skipped in (
        ("registry.master_records", r_counts.rows, r_counts.skipped),
        ("adjudication", a_counts.rows, a_counts.skipped),
        ("query", q_counts.rows, q_counts.skipped),
    ):
        if skipped:
            summary.skipped.append(name.split(".")[0])
        for table, n in counts.items():
            key = f"{name}.{table}" if name != "registry.master_records" else f"{name}[{table}]"
            summary.rows[key] = n
    return summary


# -- command line -----------------------------------------------------------------------
_GENERATE_HELP = (
    "bulk snapshot of synthetic Chongqing-like data: applies the registry, adjudication and"
    " query migrations, then COPYs people, vehicles, licences, the code catalogue and"
    " violations straight into each service's own tables. Like restoring a database, it"
    " PUBLISHES NO EVENTS (no outbox rows); re-running with the same arguments skips"
    " what is already loaded."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cqregistry")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "load-sandbox",
        help="load the SANDBOX.md roster through the running registry and adjudication"
        " services (publishes events; idempotent)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen = sub.add_parser("generate", help=_GENERATE_HELP, description=_GENERATE_HELP)
    gen.add_argument("--vehicles", type=int, required=True, help="synthetic vehicles (≈6M = CQ)")
    gen.add_argument(
        "--violations-per-vehicle",
        type=float,
        default=1.5,
        help="mean violations per vehicle (default 1.5)",
    )
    gen.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    gen.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=None,
        help="the day dates are relative to (default: today in Asia/Shanghai)",
    )
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run_load_sandbox(settings: Settings, out: TextIO, err: TextIO) -> int:
    today = dt.datetime.now(SHANGHAI).date()
    try:
        summary = asyncio.run(load_sandbox(settings, today=today))
    except (LoadError, DomainError) as exc:
        print(f"load-sandbox: FAILED: {exc}", file=err)
        return 1
    for line in summary.lines():
        print(line, file=out)
    print("sandbox vehicles (VIN proof = last 6):", file=out)
    print(format_roster_vin_table(), file=out)
    return 0


def _run_generate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
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


def main(argv: Sequence[str]) -> int:
    """``load-sandbox`` or ``generate`` (dispatched here by :mod:`cqregistry.cli`)."""
    args = _parser().parse_args(list(argv))
    settings = Settings()
    if args.command == "load-sandbox":
        return _run_load_sandbox(settings, sys.stdout, sys.stderr)
    if args.vehicles < 0:
        print("generate: --vehicles must be >= 0", file=sys.stderr)
        return 2
    return _run_generate(args, settings, sys.stdout)
