"""Online handling end to end against the real PostgreSQL and the real adjudication gRPC
server (sandbox face adapter): atomic points (R-ADJ-5), one decision per violation,
retried submits, single-use verifications bound to their person (R-ADJ-8), 404 for
another person's handling, unique 16-digit decision numbers (R-ADJ-7), and the events the
query read model reads, from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from cqadjudication.adapters.postgres_registry import PostgresRegistryCopy
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.grpc_client import call
from cqcommon.protomap import timestamp_to_proto
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import events_pb2 as events
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub

#: The ``registry_copy`` fixture (conftest); ``adjudication`` (the gRPC server) is there too.
RegistryCopies = Callable[
    [Mapping[str, int]], contextlib.AbstractAsyncContextManager[PostgresRegistryCopy]
]

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Driver:
    """A person with a licence (points ledger opened by the registry consumer's code) and
    a vehicle of their own."""

    person_id: str
    licence_id: str
    plate: str
    vehicle_id: str

    @property
    def caller(self) -> common.Caller:
        return common.Caller(user_id=f"u-{self.person_id}", person_id=self.person_id)


async def new_driver(
    registry_copy: RegistryCopies, *, name: str = "张伟", points: int = 0
) -> Driver:
    person_id, licence_id, vehicle_id = (str(uuid.uuid4()) for _ in range(3))
    plate = f"渝B{random.randrange(10_000, 100_000)}"
    async with registry_copy({"1345": 3, "1039": 0, "1636": 6}) as copy:
        id_number = f"5001011990{random.randrange(10**7, 10**8)}"
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
            first_issued_on=date(2015, 3, 1),
            status="valid",
        )
        await copy.open_ledger(
            licence_id=licence_id,
            points=points,
            first_issued_on=date(2015, 3, 1),
            now=datetime.now(UTC),
        )
    return Driver(person_id, licence_id, plate, vehicle_id)


@pytest.fixture
async def driver(registry_copy: RegistryCopies) -> Driver:
    return await new_driver(registry_copy)


async def record(
    stub: AdjudicationServiceAsyncStub, d: Driver, *, code: str = "1345"
) -> pb.Violation:
    response = await call(
        stub.RecordViolation,
        pb.RecordViolationRequest(
            source_system="camera-net",
            source_record_id=f"cam-{uuid.uuid4().hex}",
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=d.plate,
            violation_code=code,
            occurred_at=timestamp_to_proto(datetime.now(UTC) - timedelta(days=2)),
            place="重庆市渝中区解放碑",
            fine_fen=20_000,
            source=common.VIOLATION_SOURCE_NON_SITE,
            procedure=common.PROCEDURE_SIMPLE,
        ),
        timeout_s=5,
    )
    return response.violation


async def verified_handling(
    stub: AdjudicationServiceAsyncStub, d: Driver, violation_id: str
) -> pb.Handling:
    started = await call(
        stub.StartHandling,
        pb.StartHandlingRequest(caller=d.caller, violation_id=violation_id),
        timeout_s=5,
    )
    assert [s.step for s in started.steps] == ["handler"]
    done = await call(
        stub.CompleteVerification,
        pb.CompleteVerificationRequest(
            caller=d.caller, handling_id=started.handling_id, step="handler"
        ),
        timeout_s=5,
    )
    assert done.state == "verified"
    return done


async def submit(stub: AdjudicationServiceAsyncStub, d: Driver, handling_id: str) -> pb.Handling:
    return await call(
        stub.SubmitHandling,
        pb.SubmitHandlingRequest(caller=d.caller, handling_id=handling_id),
        timeout_s=30,
    )


async def test_r_adj_5_100_concurrent_submits_never_pass_the_points_limit(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver, test_settings: Settings
) -> None:
    """R-ADJ-5 / R-ADJ-7: ten 3-point violations, 100 racing submits (ten per handling):
    exactly four are decided (12 points), every retry of a decided handling returns its
    first decision, the rest are refused POINTS_LIMIT_EXCEEDED; ledger == sum of entries;
    decision numbers are unique, 16 digits, with the authority prefix."""
    violations = [await record(adjudication, driver) for _ in range(10)]
    handlings = [await verified_handling(adjudication, driver, v.violation_id) for v in violations]

    async def attempt(h: pb.Handling) -> tuple[str, str]:
        try:
            done = await submit(adjudication, driver, h.handling_id)
        except DomainError as exc:
            return h.handling_id, exc.code
        return h.handling_id, done.decision.decision_no

    outcomes = await asyncio.gather(*(attempt(h) for h in handlings for _ in range(10)))
    by_handling: dict[str, set[str]] = {}
    for handling_id, outcome in outcomes:
        by_handling.setdefault(handling_id, set()).add(outcome)
    decided = {
        hid: next(iter(o)) for hid, o in by_handling.items() if o != {"POINTS_LIMIT_EXCEEDED"}
    }
    assert len(decided) == 4
    assert all(len(by_handling[hid]) == 1 for hid in decided)  # retries: the first decision
    numbers = set(decided.values())
    assert len(numbers) == 4
    assert all(len(n) == 16 and n.isdigit() and n.startswith("500000") for n in numbers)
    conninfo = test_settings.database_url
    [(points,)] = await fetch_rows(
        conninfo,
        "SELECT points FROM adjudication.points_ledger WHERE licence_id = %s",
        driver.licence_id,
    )
    [(total,)] = await fetch_rows(
        conninfo,
        "SELECT coalesce(sum(delta), 0) FROM adjudication.points_entries WHERE licence_id = %s",
        driver.licence_id,
    )
    assert points == total == 12


async def test_decision_numbers_stay_unique_under_concurrency_r_adj_7(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver
) -> None:
    violations = [await record(adjudication, driver, code="1039") for _ in range(20)]
    handlings = [await verified_handling(adjudication, driver, v.violation_id) for v in violations]
    done = await asyncio.gather(*(submit(adjudication, driver, h.handling_id) for h in handlings))
    numbers = [h.decision.decision_no for h in done]
    assert len(set(numbers)) == 20
    assert all(len(n) == 16 and n.startswith("500000") for n in numbers)


async def test_r_adj_5_one_violation_handled_twice_concurrently_gives_one_decision(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver, test_settings: Settings
) -> None:
    v = await record(adjudication, driver)
    one = await verified_handling(adjudication, driver, v.violation_id)
    two = await verified_handling(adjudication, driver, v.violation_id)
    results = await asyncio.gather(
        submit(adjudication, driver, one.handling_id),
        submit(adjudication, driver, two.handling_id),
        return_exceptions=True,
    )
    decided = [r for r in results if isinstance(r, pb.Handling)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(decided) == 1 and len(refused) == 1
    assert refused[0].code == "ALREADY_HANDLED"
    rows = await fetch_rows(
        test_settings.database_url,
        "SELECT count(*) FROM adjudication.handlings WHERE violation_id = %s"
        " AND state = 'submitted'",
        v.violation_id,
    )
    assert rows == [(1,)]
    again = await submit(adjudication, driver, decided[0].handling_id)
    assert again.decision == decided[0].decision  # a retried submit: the first decision


async def test_r_adj_8_a_verification_serves_only_its_own_handling_and_person(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver, test_settings: Settings
) -> None:
    """A passed face check of one handling does not make another handling of the same
    person submittable; once used it stays used; and the same certify id cannot back a
    second verification row (the database refuses it)."""
    first_v, second_v = await record(adjudication, driver), await record(adjudication, driver)
    first = await verified_handling(adjudication, driver, first_v.violation_id)
    second = await call(
        adjudication.StartHandling,
        pb.StartHandlingRequest(caller=driver.caller, violation_id=second_v.violation_id),
        timeout_s=5,
    )
    with pytest.raises(DomainError) as err:
        await submit(adjudication, driver, second.handling_id)
    assert err.value.code == "VERIFICATION_PENDING"
    done = await submit(adjudication, driver, first.handling_id)
    assert [s.status for s in done.steps] == ["used"]
    conninfo = test_settings.database_url
    # the first verification's certify id copied onto the second handling: refused
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation) as dup:
            await conn.execute(
                "INSERT INTO adjudication.verifications (verification_id, handling_id, step,"
                " person_id, adapter, certify_id, url, status, started_at)"
                " SELECT gen_random_uuid(), %s, 'owner', person_id, adapter, certify_id, url,"
                " 'pending', now() FROM adjudication.verifications WHERE handling_id = %s",
                (second.handling_id, first.handling_id),
            )
    assert dup.value.diag.constraint_name == "verifications_certify_unique"
    # another person: the step's person no longer matches (the face was someone else's)
    third_v = await record(adjudication, driver)
    third = await verified_handling(adjudication, driver, third_v.violation_id)
    other = str(uuid.uuid4())
    await _exec(
        conninfo,
        "UPDATE adjudication.verifications SET person_id = %s WHERE handling_id = %s",
        other,
        third.handling_id,
    )
    with pytest.raises(DomainError) as foreign:
        await submit(adjudication, driver, third.handling_id)
    assert foreign.value.code == "VERIFICATION_NOT_FOUND"


async def _exec(conninfo: str, query: str, *params: Any) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        await conn.execute(query, params)


async def test_another_persons_handling_answers_404_like_an_unknown_one(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver, registry_copy: RegistryCopies
) -> None:
    v = await record(adjudication, driver)
    mine = await verified_handling(adjudication, driver, v.violation_id)
    stranger = await new_driver(registry_copy, name="王强")
    answers = []
    for handling_id in (mine.handling_id, str(uuid.uuid4()), "not-a-uuid"):
        for method, request in (
            (
                adjudication.GetHandling,
                pb.GetHandlingRequest(caller=stranger.caller, handling_id=handling_id),
            ),
            (
                adjudication.SubmitHandling,
                pb.SubmitHandlingRequest(caller=stranger.caller, handling_id=handling_id),
            ),
            (
                adjudication.CompleteVerification,
                pb.CompleteVerificationRequest(
                    caller=stranger.caller, handling_id=handling_id, step="handler"
                ),
            ),
        ):
            with pytest.raises(DomainError) as err:
                await call(method, request, timeout_s=5)
            answers.append(err.value.to_payload())
    assert all(a == answers[0] for a in answers)
    assert answers[0]["code"] == "HANDLING_NOT_FOUND"
    still = await call(
        adjudication.GetHandling,
        pb.GetHandlingRequest(caller=driver.caller, handling_id=mine.handling_id),
        timeout_s=5,
    )
    assert still.state == "verified"


async def _outbox(conninfo: str, aggregate_ids: list[str]) -> list[Any]:
    rows = await fetch_rows(
        conninfo,
        "SELECT envelope FROM adjudication.outbox WHERE message_key = ANY(%s) ORDER BY id",
        aggregate_ids,
    )
    return [unpack(EventEnvelope.FromString(bytes(r[0]))) for r in rows]


async def test_the_outbox_carries_what_the_read_model_reads(
    adjudication: AdjudicationServiceAsyncStub, driver: Driver, test_settings: Settings
) -> None:
    """ViolationHandled (decision no/date, due date, fine, points, handler's licence,
    channel) and PointsChanged (points after, cycle, channel) for cqquery's consumer;
    ViolationDisputed / Undisputed from staff (R-ADJ-9)."""
    v = await record(adjudication, driver)
    h = await verified_handling(adjudication, driver, v.violation_id)
    done = await submit(adjudication, driver, h.handling_id)
    conninfo = test_settings.database_url
    published = await _outbox(conninfo, [v.violation_id, driver.licence_id])
    handled = [e for e in published if isinstance(e, events.ViolationHandled)]
    points = [e for e in published if isinstance(e, events.PointsChanged)]
    assert len(handled) == 1 and len(points) == 1
    e = handled[0]
    assert (e.decision_no, e.handling_id, e.channel) == (
        done.decision.decision_no,
        h.handling_id,
        "online",
    )
    assert (e.fine_fen, e.points, e.handler_licence_id, e.handler_person_id) == (
        20_000,
        3,
        driver.licence_id,
        driver.person_id,
    )
    decided_on = date(e.decision_date.year, e.decision_date.month, e.decision_date.day)
    due = date(e.due_date.year, e.due_date.month, e.due_date.day)
    assert due - decided_on == timedelta(days=15)
    p = points[0]
    assert (p.delta, p.points_after, p.channel, p.violation_id) == (3, 3, "online", v.violation_id)
    assert p.cycle_start.month == 3 and p.cycle_start.day == 1

    clerk = common.Caller(staff_id="clerk01", staff_role="clerk")
    other = await record(adjudication, driver)
    disputed = await call(
        adjudication.DisputeViolation,
        pb.DisputeViolationRequest(caller=clerk, violation_id=other.violation_id, reason="套牌"),
        timeout_s=5,
    )
    assert disputed.disputed
    with pytest.raises(DomainError) as refused:
        await call(
            adjudication.StartHandling,
            pb.StartHandlingRequest(caller=driver.caller, violation_id=other.violation_id),
            timeout_s=5,
        )
    assert refused.value.code == "DISPUTED_COUNTER_ONLY"
    assert refused.value.details["route"] == "counter"
    await call(
        adjudication.UndisputeViolation,
        pb.UndisputeViolationRequest(caller=clerk, violation_id=other.violation_id),
        timeout_s=5,
    )
    kinds = [type(x).__name__ for x in await _outbox(conninfo, [other.violation_id])]
    assert kinds == ["ViolationRecorded", "ViolationDisputed", "ViolationUndisputed"]


async def test_the_counter_decides_a_general_procedure_case_and_keeps_the_limit(
    adjudication: AdjudicationServiceAsyncStub,
    registry_copy: RegistryCopies,
    test_settings: Settings,
) -> None:
    """DOMAIN.md: an over-200-yuan non-site case gets its decision at the counter (channel
    counter, which then blocks point-bearing online handling for a while, R-ADJ-6)."""
    d = await new_driver(registry_copy, points=3)
    recorded = await call(
        adjudication.RecordViolation,
        pb.RecordViolationRequest(
            source_system="camera-net",
            source_record_id=f"SBX-{uuid.uuid4().hex}",
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=d.plate,
            violation_code="1636",
            occurred_at=timestamp_to_proto(datetime.now(UTC) - timedelta(days=2)),
            place="重庆市渝北区",
            fine_fen=50_000,
            source=common.VIOLATION_SOURCE_NON_SITE,
            procedure=common.PROCEDURE_GENERAL,
        ),
        timeout_s=5,
    )
    clerk = common.Caller(staff_id="clerk01", staff_role="clerk")
    [(licence_no,)] = await fetch_rows(
        test_settings.database_url,
        "SELECT licence_no FROM adjudication.licences WHERE licence_id = %s",
        d.licence_id,
    )
    h = await call(
        adjudication.HandleAtCounter,
        pb.HandleAtCounterRequest(
            caller=clerk,
            violation_id=recorded.violation.violation_id,
            handler_licence_no=licence_no,
        ),
        timeout_s=5,
    )
    assert (h.route, h.state, h.decision.points) == ("counter", "submitted", 6)
    v = await record(adjudication, d)
    with pytest.raises(DomainError) as guarded:
        await call(
            adjudication.StartHandling,
            pb.StartHandlingRequest(caller=d.caller, violation_id=v.violation_id),
            timeout_s=5,
        )
    assert guarded.value.code == "POINTS_RECENTLY_CHANGED"
