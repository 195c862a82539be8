"""Adjudication's nightly jobs against the real PostgreSQL through the real gRPC server
(RunJob, GetDecisionNotice): the scoring-cycle rollover (R-JOB-5) and the decision notices
(R-JOB-3, R-ADJ-7); each job's effect, running it twice, a crash after one batch resumed
from its checkpoint, PointsChanged in the outbox, the notice PDF read back with pypdf, and
callers refused.

Isolation in the shared test database: the rollover runs "tomorrow" (``as_of``) over
drivers whose first-issue anniversary is tomorrow, so their cycle ends today and no other
test's ledger is due; the notice job starts from a checkpoint just below this test's own
decision numbers (a random division/serial range above every number the other tests use).
"""

from __future__ import annotations

import contextlib
import io
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cqadjudication.adapters.postgres_payments import PostgresPaymentFacts
from cqadjudication.adapters.postgres_registry import PostgresRegistryCopy
from cqcommon.clock import SHANGHAI
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.grpc_client import call
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import events_pb2 as events
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from pypdf import PdfReader

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub

RegistryCopies = Callable[
    [Mapping[str, int]], contextlib.AbstractAsyncContextManager[PostgresRegistryCopy]
]

pytestmark = pytest.mark.integration

ROLLOVER = "scoring_cycle_rollover"
NOTICES = "generate_decision_notices"
CLERK = common.Caller(staff_id="clerk01", staff_role="clerk")


def _tomorrow() -> date:
    return datetime.now(SHANGHAI).date() + timedelta(days=1)


def _as_of() -> datetime:
    """Tomorrow 23:00 in Chongqing: in the nightly window, the day after the cycles' end."""
    return datetime.combine(_tomorrow(), datetime.min.time(), SHANGHAI) + timedelta(hours=23)


@dataclass(frozen=True)
class Driver:
    person_id: str
    licence_id: str
    licence_no: str
    plate: str
    id_number: str


async def new_driver(
    registry_copy: RegistryCopies, *, points: int, first_issued_on: date, name: str = "欧阳堃"
) -> Driver:
    person_id, licence_id, vehicle_id = (str(uuid.uuid4()) for _ in range(3))
    plate = f"渝C{random.randrange(10_000, 100_000)}"
    id_number = f"5001011990{random.randrange(10**7, 10**8)}"
    async with registry_copy({"1345": 3, "1039": 0}) as copy:
        await copy.upsert_person(person_id=person_id, name=name, id_number=id_number)
        await copy.upsert_vehicle(
            vehicle_id=vehicle_id,
            plate_type="02",
            plate_number=plate,
            vin=f"LS5A3AJE7KS{random.randrange(100_000, 1_000_000)}",
            owner_person_id=person_id,
        )
        await copy.upsert_licence(
            licence_id=licence_id,
            person_id=person_id,
            licence_no=id_number,
            file_no=f"{random.randrange(10**11, 10**12)}",
            licence_class="C1",
            first_issued_on=first_issued_on,
            status="valid",
        )
        await copy.open_ledger(
            licence_id=licence_id,
            points=points,
            first_issued_on=first_issued_on,
            now=datetime.now(UTC),
        )
    return Driver(person_id, licence_id, id_number, plate, id_number)


async def decide(
    stub: AdjudicationServiceAsyncStub, d: Driver, decision_no: str, *, code: str = "1345"
) -> pb.Violation:
    """A decided on-site record naming the driver's licence (a fine, no points booked)."""
    today = datetime.now(SHANGHAI).date()
    response = await call(
        stub.RecordViolation,
        pb.RecordViolationRequest(
            source_system="police-pda",
            source_record_id=f"pda-{uuid.uuid4().hex}",
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=d.plate,
            licence_no=d.licence_no,
            violation_code=code,
            occurred_at=timestamp_to_proto(datetime.now(UTC) - timedelta(days=2)),
            place="重庆市渝北区金开大道",
            fine_fen=20_000,
            source=common.VIOLATION_SOURCE_ON_SITE,
            procedure=common.PROCEDURE_SIMPLE,
            decision_no=decision_no,
            decision_date=date_to_proto(today - timedelta(days=1)),
        ),
        timeout_s=5,
    )
    return response.violation


async def run(
    stub: AdjudicationServiceAsyncStub, job: str, *, checkpoint: str = "", batch: int = 0,
    as_of: datetime | None = None,
) -> jobs_pb2.RunJobResponse:  # fmt: skip
    request = jobs_pb2.RunJobRequest(job=job, checkpoint=checkpoint, batch_size=batch)
    if as_of is not None:
        request.as_of.CopyFrom(timestamp_to_proto(as_of))
    return await call(stub.RunJob, request, timeout_s=60)


async def run_to_end(
    stub: AdjudicationServiceAsyncStub, job: str, *, checkpoint: str = "", batch: int = 0,
    as_of: datetime | None = None,
) -> int:  # fmt: skip
    done, items = False, 0
    for _ in range(1000):  # bounded
        r = await run(stub, job, checkpoint=checkpoint, batch=batch, as_of=as_of)
        items, checkpoint, done = items + r.items_done, r.checkpoint, r.done
        if done:
            return items
    raise AssertionError("the job never finished")


async def ledgers(conninfo: str, licence_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    rows = await fetch_rows(
        conninfo,
        "SELECT licence_id::text, points, cycle_start, cycle_end FROM adjudication.points_ledger"
        " WHERE licence_id = ANY(%s::uuid[])",
        licence_ids,
    )
    return {r[0]: r[1:] for r in rows}


async def entries(conninfo: str, licence_id: str) -> list[tuple[Any, ...]]:
    return await fetch_rows(
        conninfo,
        "SELECT delta, points_after, channel, cycle_start FROM adjudication.points_entries"
        " WHERE licence_id = %s ORDER BY entry_id",
        licence_id,
    )


async def outbox(conninfo: str, keys: list[str]) -> list[Any]:
    rows = await fetch_rows(
        conninfo,
        "SELECT envelope FROM adjudication.outbox WHERE message_key = ANY(%s) ORDER BY id",
        keys,
    )
    return [unpack(EventEnvelope.FromString(bytes(r[0]))) for r in rows]


async def pay(settings: Settings, violation: pb.Violation) -> None:
    """FinePaid as the payment consumer applies it (the violation becomes ``paid``)."""
    db = Database(settings.database_url, "adjudication", max_size=1)
    await db.open()
    try:
        async with db.transaction() as conn:
            await PostgresPaymentFacts(conn).fine_paid(
                payment_id=f"pay-{uuid.uuid4().hex}",
                violation_id=violation.violation_id,
                decision_no=violation.decision_no,
                paid_at=datetime.now(UTC),
            )
    finally:
        await db.close()


def _decision_base() -> int:
    """A random range of 16-digit numbers (division 5009xx) no other test uses."""
    return random.randrange(10**5, 10**6) * 10**6


# -- R-JOB-5 -------------------------------------------------------------------------------
async def test_r_job_5_rollover_clears_or_carries_books_entries_and_publishes(
    adjudication: AdjudicationServiceAsyncStub,
    registry_copy: RegistryCopies,
    test_settings: Settings,
) -> None:
    tomorrow = _tomorrow()
    issued = date(2016, tomorrow.month, tomorrow.day)
    base = _decision_base()
    clean = await new_driver(registry_copy, points=5, first_issued_on=issued)
    unpaid = await new_driver(registry_copy, points=5, first_issued_on=issued)
    full = await new_driver(registry_copy, points=12, first_issued_on=issued)
    paid = await new_driver(registry_copy, points=3, first_issued_on=issued)
    await decide(adjudication, unpaid, f"5009{base + 1:012d}")
    await pay(test_settings, await decide(adjudication, paid, f"5009{base + 2:012d}"))
    ids = [d.licence_id for d in (clean, unpaid, full, paid)]
    conninfo = test_settings.database_url
    before = await ledgers(conninfo, ids)
    assert {row[2] for row in before.values()} == {datetime.now(SHANGHAI).date()}  # ends today

    # the cycle's last day is still inside it: nothing to do at 23:00 today
    today_night = _as_of() - timedelta(days=1)
    await run_to_end(adjudication, ROLLOVER, as_of=today_night)
    assert await ledgers(conninfo, ids) == before

    assert await run_to_end(adjudication, ROLLOVER, as_of=_as_of()) >= 4
    after = await ledgers(conninfo, ids)
    next_end = date(tomorrow.year + 1, tomorrow.month, tomorrow.day) - timedelta(days=1)
    assert {row[1:] for row in after.values()} == {(tomorrow, next_end)}
    assert {lid: row[0] for lid, row in after.items()} == {
        clean.licence_id: 0,  # below 12, no fines: cleared
        unpaid.licence_id: 5,  # an unpaid fine: carried
        full.licence_id: 12,  # at the limit: carried
        paid.licence_id: 0,  # its fine paid: cleared
    }
    # the ledger == the sum of its new cycle's entries == the sum of all its entries
    for d in (clean, unpaid, full, paid):
        rows = await entries(conninfo, d.licence_id)
        points = after[d.licence_id][0]
        assert sum(r[0] for r in rows if r[3] == tomorrow) == points
        assert sum(r[0] for r in rows) == points
        assert [r[2] for r in rows if r[2] == "cycle_rollover"]
    assert [r[:3] for r in await entries(conninfo, unpaid.licence_id)][-2:] == [
        (-5, 0, "cycle_rollover"),
        (5, 5, "cycle_rollover"),
    ]

    published = [e for e in await outbox(conninfo, ids) if isinstance(e, events.PointsChanged)]
    rolled = [e for e in published if e.channel == "cycle_rollover"]
    assert sorted((e.licence_id, e.delta, e.points_after) for e in rolled) == sorted(
        [
            (clean.licence_id, -5, 0),
            (unpaid.licence_id, 0, 5),
            (full.licence_id, 0, 12),
            (paid.licence_id, -3, 0),
        ]
    )
    assert all(
        (e.cycle_start.month, e.cycle_start.day) == (tomorrow.month, tomorrow.day) for e in rolled
    )
    assert {e.person_id for e in rolled} == {
        clean.person_id,
        unpaid.person_id,
        full.person_id,
        paid.person_id,
    }

    # R-JOB-5 twice: nothing due any more, nothing written
    assert (await run(adjudication, ROLLOVER, as_of=_as_of())).done
    assert await ledgers(conninfo, ids) == after
    again = [e for e in await outbox(conninfo, ids) if isinstance(e, events.PointsChanged)]
    assert len(again) == len(published)


async def test_r_job_5_a_crash_after_one_batch_resumes_from_the_checkpoint(
    adjudication: AdjudicationServiceAsyncStub,
    registry_copy: RegistryCopies,
    test_settings: Settings,
) -> None:
    tomorrow = _tomorrow()
    issued = date(2017, tomorrow.month, tomorrow.day)
    drivers = [
        await new_driver(registry_copy, points=p, first_issued_on=issued) for p in (2, 7, 13)
    ]
    ids = sorted(d.licence_id for d in drivers)
    conninfo = test_settings.database_url

    first = await run(adjudication, ROLLOVER, batch=1, as_of=_as_of())
    assert (first.items_done, first.done) == (1, False)
    # keyed by licence_id, in order (another test's ledger due tomorrow may come first)
    assert first.checkpoint <= ids[0]
    # the runner "crashed" here and calls again with the recorded checkpoint
    rest = await run_to_end(
        adjudication, ROLLOVER, checkpoint=first.checkpoint, batch=1, as_of=_as_of()
    )
    assert rest >= 2
    rolled = await ledgers(conninfo, ids)
    assert {row[1] for row in rolled.values()} == {tomorrow}
    for d in drivers:  # each rolled exactly once: one closing entry each
        rows = await entries(conninfo, d.licence_id)
        assert sum(1 for r in rows if r[2] == "cycle_rollover" and r[0] <= 0 and r[1] == 0) == 1
    assert sorted(row[0] for row in rolled.values()) == [0, 0, 13]


async def test_run_job_refuses_an_unknown_job_and_a_bad_checkpoint(
    adjudication: AdjudicationServiceAsyncStub,
) -> None:
    with pytest.raises(DomainError) as unknown:
        await run(adjudication, "resolve_pending_payments")
    assert unknown.value.code == "UNKNOWN_JOB"
    with pytest.raises(DomainError) as bad:
        await run(adjudication, ROLLOVER, checkpoint="licence-7")
    assert bad.value.code == "VALIDATION_FAILED"


# -- R-JOB-3 / R-ADJ-7 ---------------------------------------------------------------------
def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def notice(
    stub: AdjudicationServiceAsyncStub, decision_no: str, caller: common.Caller = CLERK
) -> pb.DecisionNotice:
    request = pb.GetDecisionNoticeRequest(caller=caller, decision_no=decision_no)
    return await call(stub.GetDecisionNotice, request, timeout_s=30)


async def stored_notices(conninfo: str, numbers: list[str]) -> dict[str, tuple[bytes, datetime]]:
    rows = await fetch_rows(
        conninfo,
        "SELECT decision_no, content, generated_at FROM adjudication.decision_notices"
        " WHERE decision_no = ANY(%s)",
        numbers,
    )
    return {r[0]: (bytes(r[1]), r[2]) for r in rows}


async def test_r_job_3_notices_made_once_and_resumed_after_a_crash(
    adjudication: AdjudicationServiceAsyncStub,
    registry_copy: RegistryCopies,
    test_settings: Settings,
) -> None:
    base = _decision_base()
    d = await new_driver(registry_copy, points=0, first_issued_on=date(2016, 3, 1), name="赵敏")
    numbers = [f"5009{base + n:012d}" for n in (1, 2, 3)]
    for number in numbers:
        await decide(adjudication, d, number)
    start = f"5009{base:012d}"
    conninfo = test_settings.database_url

    first = await run(adjudication, NOTICES, checkpoint=start, batch=1)
    assert (first.items_done, first.checkpoint, first.done) == (1, numbers[0], False)
    made_first = await stored_notices(conninfo, numbers)
    assert list(made_first) == [numbers[0]]
    # resumed from the checkpoint: the first one is not made again
    assert await run_to_end(adjudication, NOTICES, checkpoint=first.checkpoint, batch=2) >= 2
    made = await stored_notices(conninfo, numbers)
    assert sorted(made) == numbers
    assert made[numbers[0]] == made_first[numbers[0]]

    # twice: nothing left to make, nothing rewritten
    again = await run(adjudication, NOTICES, checkpoint=start)
    assert (again.items_done, again.done) == (0, True)
    assert await stored_notices(conninfo, numbers) == made

    text = _text(made[numbers[1]][0])
    assert numbers[1] in text and "处罚决定书" in text
    assert "赵敏" in text and d.id_number not in text
    assert f"{d.id_number[:4]}**********{d.id_number[-4:]}" in text


async def test_r_adj_7_staff_print_a_notice_at_once_and_get_the_same_bytes_again(
    adjudication: AdjudicationServiceAsyncStub,
    registry_copy: RegistryCopies,
    test_settings: Settings,
) -> None:
    base = _decision_base()
    d = await new_driver(registry_copy, points=0, first_issued_on=date(2016, 3, 1))
    number = f"5009{base + 7:012d}"
    await decide(adjudication, d, number)

    # the nightly job has not come by: the counter can print at once, and it is stored
    doc = await notice(adjudication, number)
    assert (doc.decision_no, doc.content_type) == (number, "application/pdf")
    assert doc.filename.endswith(f"{number}.pdf")
    text = _text(doc.content)
    assert number in text and "处罚决定书" in text and d.id_number not in text
    assert "欧阳堃" in text and d.plate in text
    stored = await stored_notices(test_settings.database_url, [number])
    assert stored[number][0] == doc.content
    # asked again: the stored notice, the same bytes, the same generated_at
    second = await notice(adjudication, number)
    assert (second.content, second.generated_at) == (doc.content, doc.generated_at)
    # the job skips it: nothing made again
    job = await run(adjudication, NOTICES, checkpoint=f"5009{base + 6:012d}", batch=1)
    assert job.checkpoint != number
    assert await stored_notices(test_settings.database_url, [number]) == stored


@pytest.mark.parametrize(
    ("caller", "number", "code"),
    [
        (
            common.Caller(user_id="u-1", person_id=str(uuid.uuid4())),
            "5000000000000001",
            "FORBIDDEN",
        ),
        (common.Caller(), "5000000000000001", "FORBIDDEN"),
        (CLERK, "50000000001", "INVALID_DECISION_NO"),
        (CLERK, "5009999999999999", "DECISION_NOTICE_NOT_FOUND"),
    ],
)
async def test_r_adj_7_users_and_unknown_numbers_are_refused(
    adjudication: AdjudicationServiceAsyncStub, caller: common.Caller, number: str, code: str
) -> None:
    with pytest.raises(DomainError) as refused:
        await notice(adjudication, number, caller)
    assert refused.value.code == code
