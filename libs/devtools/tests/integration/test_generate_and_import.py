"""The bulk snapshot (``python -m cqdev.datagen``) and the registry import against real
PostgreSQL, in a fresh database of their own: counts in all four schemas, valid VINs,
unique plates, a re-import of a generated record finds it by natural key and is a no-op,
a bad batch writes nothing (R-ERR-1), a changed record publishes exactly one outbox row,
a generated violation sent again through adjudication's RecordViolation would be a
replay (same fingerprint), and the follow service's registry copy is what its consumer
writes from the registry's stored events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from cqadjudication.domain.violations import RecordingWindow, validate_report
from cqcommon.clock import FixedClock
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.identifiers import is_valid_vin
from cqcommon.protomap import timestamp_from_proto, timestamp_to_proto
from cqdev.datagen import generate as gen
from cqdev.datagen.synthetic import iter_rows_for_copy
from cqdev.stack import Stack, create_database, drop_database, with_database
from cqfollow.adapters.postgres_registry import PostgresRegistryCopy
from cqfollow.entrypoints.consumers import REGISTRY_EVENTS
from cqregistry.adapters.postgres_master_records import PostgresRegistryUnitOfWork
from cqregistry.domain.imports import Entry
from cqregistry.entrypoints.mappers import (
    EVENT_MESSAGES,
    RECORD_CODEC,
    entry_from_proto,
    envelope_of,
)
from cqregistry.service_layer.import_records import ImportResult, import_records
from cqtraffic.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration

OPTS = gen.GenerateOptions(
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
async def generated(conninfo: str) -> gen.GenerateSummary:
    return await gen.generate(conninfo, OPTS)


@pytest.fixture
async def registry_db(conninfo: str, generated: gen.GenerateSummary) -> AsyncIterator[Database]:
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
            id_key=OPTS.id_key,
            vehicles=OPTS.vehicles,
            today=OPTS.today,
            violations_per_vehicle=OPTS.violations_per_vehicle,
        )
    )


async def test_generate_counts_in_all_four_schemas(
    conninfo: str, generated: gen.GenerateSummary
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
            ("adjudication", "persons", people),
            ("adjudication", "points_ledger", licences),
            ("query", "persons", people),
            ("query", "vehicles", vehicles),
            ("query", "licences", licences),
            ("query", "violations", violations),
            ("follow", "persons", people),
            ("follow", "vehicles", vehicles),
            ("follow", "licences", licences),
            ("registry", "outbox", 0),  # a bulk snapshot publishes nothing
            ("adjudication", "outbox", 0),
            ("follow", "outbox", 0),
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
        # every licence can be handled: its ledger opened with the registry's points, and
        # points == sum(entries) holds from the start (R-ADJ-5's invariant)
        cur = await conn.execute(
            "SELECT count(*) FROM adjudication.points_ledger l JOIN query.licences q"
            " USING (licence_id) WHERE l.points = q.points AND l.points = COALESCE((SELECT"
            " sum(e.delta) FROM adjudication.points_entries e WHERE e.licence_id = l.licence_id"
            " AND e.channel = 'registry'), 0)"
        )
        row = await cur.fetchone()
        assert row is not None and row[0] == licences
        # adjudication's rule: a decision iff handled (or paid)
        cur = await conn.execute(
            "SELECT count(*) FROM adjudication.violations"
            " WHERE (decision_no IS NULL) <> (status = 'unhandled')"
        )
        row = await cur.fetchone()
        assert row is not None and row[0] == 0
    registry_rows = people + vehicles + licences + 35
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute("SELECT count(*) FROM adjudication.points_entries")
        entries = await cur.fetchone()
    assert entries is not None
    # persons and a ledger per licence (+ an opening entry for licences with points)
    adjudication_rows = vehicles + licences + 35 + violations + people + licences + entries[0]
    query_rows = people + vehicles + licences + violations
    follow_rows = people + vehicles + licences
    assert generated.total_rows == registry_rows + adjudication_rows + query_rows + follow_rows


async def test_vins_valid_and_plates_unique(conninfo: str, generated: gen.GenerateSummary) -> None:
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


async def test_generate_again_is_skipped(conninfo: str, generated: gen.GenerateSummary) -> None:
    again = await gen.generate(conninfo, OPTS)
    assert sorted(again.skipped) == ["adjudication", "follow", "query", "registry"]
    assert again.total_rows == 0


async def _import(db: Database, entries: list[Entry]) -> ImportResult:
    async with db.unit_of_work() as uow:
        return await import_records(
            uow=PostgresRegistryUnitOfWork(uow, envelope_of), codec=RECORD_CODEC, entries=entries
        )


def _first_person() -> reg.RegistryRecord:
    record = next(gen.synthetic_records(OPTS))
    assert record.WhichOneof("record") == "person"
    return record


async def test_reimport_of_a_generated_record_is_unchanged(registry_db: Database) -> None:
    """Found by its natural key: the id the snapshot stored, unchanged, nothing published."""
    first = next(gen.registry_rows(OPTS))
    before = await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox")
    result = await _import(registry_db, [entry_from_proto(0, _first_person())])
    assert (result.changed, result.unchanged) == (0, 1)
    assert result.ids == (first.record_id,)
    assert await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox") == before


async def test_a_batch_that_fails_midway_writes_nothing(registry_db: Database) -> None:
    """R-ERR-1: a new person, then a vehicle whose owner is unknown: the batch is refused
    after the person was written inside the transaction, and nothing stays."""
    good = reg.RegistryRecord(
        person=reg.PersonRecord(id_number="500103198803159111", name="测试", phone="13800009999")
    )
    vehicle = next(r for r in gen.synthetic_records(OPTS) if r.WhichOneof("record") == "vehicle")
    vehicle.vehicle.owner_id_number = "500105199207089222"  # nobody in this database
    rows = "SELECT count(*) FROM registry.master_records"
    events = "SELECT count(*) FROM registry.outbox"
    before = (
        await _scalar(registry_db.conninfo, rows),
        await _scalar(registry_db.conninfo, events),
    )
    with pytest.raises(DomainError) as exc:
        await _import(registry_db, [entry_from_proto(0, good), entry_from_proto(1, vehicle)])
    assert exc.value.details["field"] == "owner_id_number"
    after = (await _scalar(registry_db.conninfo, rows), await _scalar(registry_db.conninfo, events))
    assert after == before
    assert not await _scalar(
        registry_db.conninfo,
        "SELECT count(*) FROM registry.master_records WHERE natural_key = %s",
        (good.person.id_number,),
    )


def test_a_malformed_record_is_refused_before_any_write() -> None:
    bad = next(r for r in gen.synthetic_records(OPTS) if r.WhichOneof("record") == "vehicle")
    bad.vehicle.plate_number = "渝A1234"  # one character short
    with pytest.raises(DomainError):
        entry_from_proto(0, bad)


async def test_a_changed_record_publishes_exactly_one_event(registry_db: Database) -> None:
    record = _first_person()
    record.person.phone = "13700000000"
    person_id = next(gen.registry_rows(OPTS)).record_id
    query = "SELECT count(*) FROM registry.outbox WHERE message_key = %s"
    key = (person_id,)
    before = await _scalar(registry_db.conninfo, query, key)
    total = await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox")
    result = await _import(registry_db, [entry_from_proto(0, record)])
    assert (result.changed, result.unchanged, result.ids) == (1, 0, (person_id,))
    assert await _scalar(registry_db.conninfo, query, key) == before + 1
    assert await _scalar(registry_db.conninfo, "SELECT count(*) FROM registry.outbox") == total + 1
    event_type = await _scalar(
        registry_db.conninfo,
        "SELECT event_type FROM registry.outbox WHERE message_key = %s ORDER BY id DESC LIMIT 1",
        key,
    )
    assert event_type == "cqtraffic.registry.v1.PersonRegistered"
    again = await _import(registry_db, [entry_from_proto(0, record)])  # the same change again
    assert (again.changed, again.unchanged) == (0, 1)


async def test_a_generated_violation_recorded_again_is_a_replay(
    conninfo: str, generated: gen.GenerateSummary
) -> None:
    """RecordViolation tells a replay by the report's fingerprint: the snapshot stored the
    one the same source record, sent through gRPC, computes."""
    joined = next(j for j in gen.joined_violations(OPTS) if j.row[10] == "simple")
    r = joined.row
    occurred = r[5]
    assert isinstance(occurred, dt.datetime)
    clock = FixedClock(dt.datetime.combine(OPTS.today, dt.time(12), tzinfo=dt.UTC))
    report = validate_report(
        source_system=gen.SYNTHETIC_SOURCE_SYSTEM,
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
        clock=clock,
        window=RecordingWindow(clock_skew=dt.timedelta(minutes=5), floor_date=dt.date(2000, 1, 1)),
    )
    stored = await _scalar(
        conninfo,
        "SELECT request_hash FROM adjudication.violations WHERE violation_id = %s",
        (r[0],),
    )
    assert stored == report.fingerprint()


_FOLLOW_COPY = {
    "persons": "person_id, name, phone, alipay_user_id",
    "vehicles": "vehicle_id, plate_type, plate_number, vin, owner_person_id",
    "licences": "licence_id, person_id, licence_no, file_no",
}


async def _follow_copy(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The follow service's registry copy, every column but ``updated_at``, in key order."""
    copy: dict[str, list[tuple[Any, ...]]] = {}
    for table, columns in _FOLLOW_COPY.items():
        cur = await conn.execute(f"SELECT {columns} FROM follow.{table} ORDER BY 1")
        copy[table] = await cur.fetchall()
    return copy


async def test_follow_copy_is_what_its_registry_consumer_writes(
    conninfo: str, generated: gen.GenerateSummary
) -> None:
    """Every event the registry stored for the snapshot, put through the follow service's
    own registry consumer (its handlers on the PostgreSQL copy) as a redelivery, changes
    nothing in the copy but ``updated_at``: the bulk rows are the consumer's rows, the
    phones and Alipay ids that pick the consent route (R-FOL-2) included. Rolled back."""
    async with await psycopg.AsyncConnection.connect(
        conninfo, options="-c search_path=follow"
    ) as conn:
        before = await _follow_copy(conn)
        # records an import changed after the snapshot (other tests here) published an
        # event of their own, which no consumer applied in this database: left out
        cur = await conn.execute(
            "SELECT m.kind, m.payload FROM registry.master_records m"
            " WHERE m.kind <> 'violation_code' AND NOT EXISTS"
            " (SELECT 1 FROM registry.outbox o WHERE o.message_key = m.record_id)"
        )
        stored = await cur.fetchall()
        assert len(stored) >= sum(len(rows) for rows in before.values()) - 1
        async with conn.transaction(force_rollback=True):
            copy = PostgresRegistryCopy(conn)
            for kind, payload in stored:
                event = EVENT_MESSAGES[kind].FromString(bytes(payload))
                await REGISTRY_EVENTS[type(event)](copy, event, dt.datetime.now(dt.UTC))
            assert await _follow_copy(conn) == before
    persons = before["persons"]
    on_platform = sum(1 for p in persons if p[3] is not None)
    # ~60 % of the synthetic people use the mini-program; everyone has a phone on record
    assert 0.5 * len(persons) < on_platform < 0.7 * len(persons)
    assert all(p[2] for p in persons)
