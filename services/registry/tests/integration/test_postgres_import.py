"""The import use case on the PostgreSQL adapter: natural keys and ids are unique in
``master_records``, a disagreeing pin is refused with nothing written, and the ids the
registry assigns are random per natural key."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.settings import Settings
from cqdev.datagen.identifiers import make_id_number
from cqregistry.adapters.postgres_master_records import PostgresRegistryUnitOfWork
from cqregistry.domain.imports import Entry, PersonEntry
from cqregistry.entrypoints.mappers import RECORD_CODEC, envelope_of
from cqregistry.service_layer.import_records import ImportResult, import_records

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Database]:
    database = Database(test_settings.database_url, "registry", max_size=2)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def _import(db: Database, entries: list[Entry]) -> ImportResult:
    async with db.unit_of_work() as uow:
        return await import_records(
            uow=PostgresRegistryUnitOfWork(uow, envelope_of), codec=RECORD_CODEC, entries=entries
        )


def _fresh_person(pinned_id: str | None = None) -> PersonEntry:
    rng = random.SystemRandom()
    born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(15000))
    id_number = make_id_number("500104", born, rng.randrange(1000))
    return PersonEntry(id_number, "测试", "13800001111", None, pinned_id)


async def _count(db: Database, sql: str, params: tuple[Any, ...]) -> int:
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_ids_are_random_and_kept_per_natural_key(db: Database) -> None:
    person = _fresh_person()
    (first,) = (await _import(db, [person])).ids
    assert uuid.UUID(first).version == 4
    again = await _import(db, [person])
    assert again.ids == (first,) and (again.changed, again.unchanged) == (0, 1)
    other = await _import(db, [_fresh_person()])
    assert other.ids != (first,)


async def test_a_disagreeing_pin_is_refused_and_writes_nothing(db: Database) -> None:
    person = _fresh_person()
    (assigned,) = (await _import(db, [person])).ids
    newcomer = _fresh_person()
    outbox = "SELECT count(*) FROM registry.outbox"
    before = await _count(db, outbox, ())
    for batch in (
        [newcomer, PersonEntry(person.id_number, "测试", "13800001111", None, str(uuid.uuid4()))],
        [newcomer, _fresh_person(pinned_id=assigned)],  # another natural key's id
    ):
        with pytest.raises(DomainError) as exc:
            await _import(db, list(batch))
        assert exc.value.code == "REGISTRY_ID_CONFLICT"
    assert await _count(db, outbox, ()) == before
    sql = "SELECT count(*) FROM registry.master_records WHERE natural_key = %s"
    assert await _count(db, sql, (newcomer.id_number,)) == 0
