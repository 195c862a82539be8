"""The bulk snapshot (``generate``) and the registry import against real PostgreSQL, in a
fresh database of their own: counts in all three schemas, valid VINs, unique plates,
a re-import of a generated record is a no-op, a bad batch writes nothing (R-ERR-1), a
changed record publishes exactly one outbox row, and a generated violation sent again
through adjudication's RecordViolation is a replay."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from cqadjudication.adapters.postgres_violations import PostgresViolationRepository
from cqadjudication.domain.violations import validate_report
from cqadjudication.service_layer.record_violation import record_violation
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.identifiers import is_valid_vin
from cqcommon.protomap import timestamp_from_proto, timestamp_to_proto
from cqdev.stack import Stack, create_database, drop_database, with_database
from cqregistry import loader
from cqregistry.generator import iter_rows_for_copy
from cqregistry.service_layer.import_records import import_records
from cqtraffic.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration

OPTS = loader.GenerateOptions(
    vehicles=2000, violations_per_vehicle=1.5, seed=7, today=dt.date(2025, 11, 21)
)


@pytest.fixture(scope="module")
def conninfo(stack: Stack) -> Iterator[str]:
    name = f"cqreg_test_{uuid.uuid4().hex[:12]}"
    create_database(stack.database_url, name)
    try:
        yield with_database(stack.database_url, name)
    finally:
        drop_database(stack.database_url, name)


@pytest.fixture(scope="module")
async def generated(conninfo: str) -> loader.GenerateSummary:
    return await loader.generate(conninfo, OPTS)


@pytest.fixture
async def registry_db(conninfo: str, generated: loader.GenerateSummary) -> AsyncIterator[Database]:
    db = Database(conninfo, "registry", max_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def _scalar(conninfo: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        assert row is not None
        return row[0]


def _expected(table: str) -> int:
    return sum(
        1
        for _ in iter_rows_for_copy(
            table,
            seed=OPTS.seed,
            vehicles=OPTS.vehicles,
            today=OPTS.today,
            violations_per_vehicle=OPTS.violations_per_vehicle,
        )
    )


async def test_generate_counts_in_all_three_schemas(
    conninfo: str, generated: loader.GenerateSummary
) -> None:
    people, vehicles, licences = _expected("people"), _expected("vehicles"), _expected("licences")
    violations = _expected("violations")
    assert vehicles == people == OPTS.vehicles
    assert 0.75 * OPTS.vehicles < licences < 0.95 * OPTS.vehicles
    assert violations > OPTS.vehicles
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute("SELECT kind, count(*) FROM registry.master_records GROUP BY kind")
        assert dict(await cur.fetchall()) == {
            "person": people,
            "vehicle": vehicles,
            "driver": licences,
            "violation_code": 35,
        }
        for schema, table, n in [
            ("adjudication", "vehicles", vehicles),
            ("adjudication", "licences", licences),
            ("adjudication", "violation_codes", 35),
            ("adjudication", "violations", violations),
            ("query", "persons", people),
            ("query", "vehicles", vehicles),
            ("query", "licences", licences),
            ("query", "violations", violations),
            ("registry", "outbox", 0),  # a bulk snapshot publishes nothing
            ("adjudication", "outbox", 0),
        ]:
            cur = await conn.execute(f"SELECT count(*) FROM {schema}.{table}")
            row = await cur.fetchone()
            assert row is not None and row[0] == n, (schema, table)
        # the read model and the legal record agree on every violation
        cur = await conn.execute(
            "SELECT count(*) FROM adjudication.violations a JOIN query.violations q"
            " USING (violation_id) WHERE a.status = q.status AND a.vehicle_id = q.vehicle_id"
            " AND a.fine_fen = q.fine_fen AND a.occurred_at = q.occurred_at"
        )
        row = await cur.fetchone()
        assert row is not None and row[0] == violations
        # adjudication's rule: a decision iff handled (or paid)
        cur = await conn.execute(
            "SELECT count(*) FROM adjudication.violations"
            " WHERE (decision_no IS NULL) <> (status = 'unhandled')"
        )
        row = await cur.fetchone()
        assert row is not None and row[0] == 0
    registry_rows = people + vehicles + licences + 35
    adjudication_rows = vehicles + licences + 35 + violations
    query_rows = people + vehicles + licences + violations
    assert generated.total_rows == registry_rows + adjudication_rows + query_rows


async def test_vins_valid_and_plates_unique(
    conninfo: str, generated: loader.GenerateSummary
) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute(
            "SELECT payload FROM registry.master_records WHERE kind = 'vehicle'"
        )
        vehicles = [reg.VehicleRegistered.FromString(bytes(r[0])) for r in await cur.fetchall()]
        cur = await conn.execute("SELECT vin, plate_type, plate_number FROM query.vehicles")
        read_model = await cur.fetchall()
    assert len(vehicles) == OPTS.vehicles
    assert all(is_valid_vin(v.vin) for v in vehicles)
    assert all(is_valid_vin(r[0]) for r in read_model)
    plates = Counter((v.plate_type, v.plate_number) for v in vehicles)
    assert max(plates.values()) == 1
    assert len({r[2] for r in read_model}) == OPTS.vehicles
    assert len({v.vin for v in vehicles}) == OPTS.vehicles


async def test_generate_again_is_skipped(conninfo: str, generated: loader.GenerateSummary) -> None:
    again = await loader.generate(conninfo, OPTS)
    assert sorted(again.skipped) == ["adjudication", "query", "registry"]
    assert again.total_rows == 0


async def test_reimport_of_a_generated_record_is_unchanged(registry_db: Database) -> None:
    record = next(loader.synthetic_records(OPTS))
    before = await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox")
    async with registry_db.unit_of_work() as uow:
        result = await import_records(uow=uow, records=[record])
    assert (result.changed, result.unchanged) == (0, 1)
    assert await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox") == before


async def test_a_batch_with_one_malformed_record_writes_nothing(registry_db: Database) -> None:
    good = reg.RegistryRecord(
        person=reg.PersonRegistered(
            person_id=str(uuid.uuid4()),
            name="测试",
            id_number="500103198803159111",
            phone="13800009999",
        )
    )
    bad = reg.RegistryRecord(vehicle=next(iter(_generated_vehicle())))
    bad.vehicle.plate_number = "渝A1234"  # one character short
    rows = "SELECT count(*) FROM registry.master_records"
    events = "SELECT count(*) FROM registry.outbox"
    before = (
        await _scalar(registry_db.conninfo, rows),
        await _scalar(registry_db.conninfo, events),
    )
    with pytest.raises(DomainError):
        async with registry_db.unit_of_work() as uow:
            await import_records(uow=uow, records=[good, bad])
    after = (await _scalar(registry_db.conninfo, rows), await _scalar(registry_db.conninfo, events))
    assert after == before
    assert not await _scalar(
        registry_db.conninfo,
        "SELECT count(*) FROM registry.master_records WHERE record_id = %s",
        (good.person.person_id,),
    )


def _generated_vehicle() -> Iterator[reg.VehicleRegistered]:
    for record in loader.synthetic_records(OPTS):
        if record.WhichOneof("record") == "vehicle":
            yield record.vehicle


async def test_a_changed_record_publishes_exactly_one_event(registry_db: Database) -> None:
    record = next(loader.synthetic_records(OPTS))
    assert record.WhichOneof("record") == "person"
    record.person.phone = "13700000000"
    query = "SELECT count(*) FROM registry.outbox WHERE message_key = %s"
    key = (record.person.person_id,)
    before = await _scalar(registry_db.conninfo, query, key)
    total = await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox")
    async with registry_db.unit_of_work() as uow:
        result = await import_records(uow=uow, records=[record])
    assert (result.changed, result.unchanged) == (1, 0)
    assert await _scalar(registry_db.conninfo, query, key) == before + 1
    assert await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox") == total + 1
    event_type = await _scalar(
        registry_db.conninfo,
        "SELECT event_type FROM registry.outbox WHERE message_key = %s ORDER BY id DESC LIMIT 1",
        key,
    )
    assert event_type == "cqtraffic.registry.v1.PersonRegistered"
    async with registry_db.unit_of_work() as uow:  # the same change again: nothing new
        again = await import_records(uow=uow, records=[record])
    assert (again.changed, again.unchanged) == (0, 1)


async def test_a_generated_violation_recorded_again_is_a_replay(
    conninfo: str, generated: loader.GenerateSummary
) -> None:
    joined = next(j for j in loader.joined_violations(OPTS) if j.row[10] == "simple")
    r = joined.row
    occurred = r[5]
    assert isinstance(occurred, dt.datetime)
    report = validate_report(
        source_system=loader.SYNTHETIC_SOURCE_SYSTEM,
        source_record_id=str(r[1]),
        plate_type=joined.plate_type,
        plate_number=joined.plate_number,
        licence_no=joined.licence_no if r[3] is not None else None,
        violation_code=str(r[4]),
        # the way the gRPC servicer sees it: through a protobuf Timestamp
        occurred_at=timestamp_from_proto(timestamp_to_proto(occurred)),
        place=str(r[6]),
        fine_fen=int(r[7]),  # type: ignore[call-overload]
        source=str(r[9]),
        procedure=str(r[10]),
        decision_no=r[12],  # type: ignore[arg-type]
        decision_date=r[13],  # type: ignore[arg-type]
    )
    db = Database(conninfo, "adjudication", max_size=1)
    await db.open()
    try:
        async with db.unit_of_work() as uow:
            result = await record_violation(
                uow=uow, repositories=PostgresViolationRepository, report=report
            )
    finally:
        await db.close()
    assert result.created is False
    assert result.violation.violation_id == str(r[0])
