"""The read-model projector's set-based writes against real PostgreSQL: a run of
``ViolationRecorded`` written at once leaves the same rows, and names the same cache
subjects for each event, as the events one at a time (``BatchHandler`` in
``cqcommon.inbox``), facts that overtook their violation included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cqcommon.db import Database
from cqcommon.settings import Settings
from cqquery.adapters.projector import ReadModelProjector, RecordedViolation

pytestmark = pytest.mark.integration

COLUMNS = (
    "status, decision_no, decision_date, licence_id::text, fine_fen, points, disputed,"
    " paid_at, plate_number, violation_code, place"
)


@pytest.fixture
async def db(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Database]:
    database = Database(test_settings.database_url, "query", max_size=2)
    await database.open()
    yield database
    await database.close()


def recording(*, licence: bool = True, fine_fen: int = 20_000) -> RecordedViolation:
    return RecordedViolation(
        violation_id=str(uuid.uuid4()),
        vehicle_id=str(uuid.uuid4()),
        plate_type="02",
        plate_number="渝A12345",
        licence_id=str(uuid.uuid4()) if licence else None,
        violation_code="1345",
        description_zh="超速",
        occurred_at=datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
        place="重庆市江北区",
        fine_fen=fine_fen,
        points=3,
        source="non_site",
        procedure="simple",
        status="unhandled",
        decision_no=None,
        decision_date=None,
    )


async def shown(db: Database, violation_id: str) -> tuple[object, ...]:
    async with db.connection() as conn:
        cur = await conn.execute(
            f"SELECT {COLUMNS} FROM violations WHERE violation_id = %s", (violation_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)


async def paid_first(db: Database, violation_id: str) -> None:
    """A payment that overtook its violation (FinePaid before ViolationRecorded)."""
    async with db.transaction() as conn:
        await ReadModelProjector(conn).fine_paid(
            payment_id=str(uuid.uuid4()),
            violation_id=violation_id,
            decision_no="5001011234567890",
            amount_fen=20_000,
            paid_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            channel="alipay",
        )


async def test_a_run_of_recordings_at_once_equals_them_one_at_a_time(db: Database) -> None:
    """Same rows and same subjects per event, whether the projector gets the run at once
    or one event at a time: a plain recording, one without a licence, one whose payment
    came first (shown paid), and one violation recorded twice in the run (the first
    recording wins, and both events name its subjects)."""
    plain, unlicensed, prepaid = recording(), recording(licence=False), recording()
    decided = replace(recording(), decision_no="5001019876543210", decision_date=date(2026, 11, 3))
    again = replace(plain, fine_fen=5_000)  # a second recording of the same violation
    run = [plain, unlicensed, prepaid, decided, again]
    twins = {v.violation_id: replace(v, violation_id=str(uuid.uuid4())) for v in run[:4]}
    singles = [*twins.values(), replace(again, violation_id=twins[plain.violation_id].violation_id)]
    await paid_first(db, prepaid.violation_id)
    await paid_first(db, twins[prepaid.violation_id].violation_id)

    async with db.transaction() as conn:
        at_once = await ReadModelProjector(conn).violations_recorded(run)
    one_by_one = []
    for v in singles:
        async with db.transaction() as conn:
            one_by_one += await ReadModelProjector(conn).violations_recorded([v])

    def renamed(subjects: list[tuple[str, str]], violation_id: str) -> list[tuple[str, str]]:
        return [(k, violation_id if k == "violation" else s) for k, s in subjects]

    for batch_v, single_v, batch_s, single_s in zip(run, singles, at_once, one_by_one, strict=True):
        assert await shown(db, batch_v.violation_id) == await shown(db, single_v.violation_id)
        assert batch_s == renamed(single_s, batch_v.violation_id)
    assert (await shown(db, prepaid.violation_id))[0] == "paid"
    assert (await shown(db, decided.violation_id))[0] == "handled_unpaid"
    assert (await shown(db, plain.violation_id))[4] == 20_000  # the first recording won
    assert at_once[0] == [
        ("violation", plain.violation_id),
        ("vehicle", plain.vehicle_id),
        ("licence", plain.licence_id),
    ]
    assert at_once[1] == [
        ("violation", unlicensed.violation_id),
        ("vehicle", unlicensed.vehicle_id),
    ]
    assert at_once[4] == at_once[0]


async def test_refreshing_names_subjects_in_the_events_spelling(db: Database) -> None:
    """An id spelled in capitals by its event still gets its vehicle and licence
    invalidated (the rows come back in PostgreSQL's spelling)."""
    v = recording()
    async with db.transaction() as conn:
        await ReadModelProjector(conn).violations_recorded([v])
        touched = await ReadModelProjector(conn).refresh_violations([v.violation_id.upper()])
    assert touched == {
        v.violation_id.upper(): [
            ("violation", v.violation_id.upper()),
            ("vehicle", v.vehicle_id),
            ("licence", v.licence_id),
        ]
    }
