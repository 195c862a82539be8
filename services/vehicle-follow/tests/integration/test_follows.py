"""Follows end to end against the real PostgreSQL and Redis through the real follow gRPC
server (SMS codes in Redis, the recording SMS sender, the sandbox outbox):

- R-FOL-6: 50 concurrent approvals racing for one vehicle's last follower slot, and for
  one user's last chance and last active slot, never go over quota (counted in the
  database afterwards);
- R-SMS-1: 100 concurrent requests that send a code to one phone send exactly one SMS;
  5 wrong entries void the code, and the right code after that fails;
- every RPC answers the same NOT_FOUND for another user's request or follow as for an
  unknown id;
- R-FOL-5: the expiry job ends an SMS follow a year old with ``FollowEnded`` in the
  outbox, and a second run changes nothing;
- ``FollowStarted`` / ``FollowEnded`` rows in the outbox carry what the query service's
  consumer reads;
- the SQL of every list (incoming requests, follows with quota use, followers, licence
  follows) on the real schema.

``FOLLOW_RACE_SIZE`` sets the racers (50 here).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cqcommon.clock import SHANGHAI
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.grpc_client import call
from cqcommon.identifiers import id_check_char, with_vin_check_digit
from cqcommon.protomap import timestamp_from_proto
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqfollow.adapters.postgres_registry import PostgresRegistryCopy
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.follow.v1 import events_pb2 as events
from cqtraffic.follow.v1 import follow_pb2 as pb

if TYPE_CHECKING:
    from cqtraffic.follow.v1.follow_pb2_grpc import FollowServiceAsyncStub

pytestmark = pytest.mark.integration

RACE = int(os.environ.get("FOLLOW_RACE_SIZE", "50"))
STAFF = common.Caller(staff_id="clerk01", staff_role="clerk")
_PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
Attempt = Callable[[str], Awaitable[Any]]


# -- the registry copy, written as the registry consumer writes it ------------------------------
@dataclass(frozen=True)
class Person:
    person_id: str
    name: str
    phone: str | None
    user_id: str | None

    @property
    def caller(self) -> common.Caller:
        return common.Caller(user_id=self.user_id or "", person_id=self.person_id)


@dataclass(frozen=True)
class Car:
    vehicle_id: str
    plate_number: str
    vin: str
    owner: Person


def _user_id() -> str:
    return f"2088{random.randrange(10**11, 10**12)}"


def _phone() -> str:
    return f"139{random.randrange(10**8):08d}"


def new_person(*, on_platform: bool = True, phone: bool = True, name: str = "张伟") -> Person:
    return Person(
        str(uuid.uuid4()), name, _phone() if phone else None, _user_id() if on_platform else None
    )


def stranger() -> common.Caller:
    """A logged-in user who owns nothing."""
    return common.Caller(user_id=_user_id())


async def register(db: Database, *people: Person, cars: tuple[Car, ...] = ()) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        copy = PostgresRegistryCopy(conn)
        for p in people:
            await copy.upsert_person(
                person_id=p.person_id,
                name=p.name,
                phone=p.phone,
                alipay_user_id=p.user_id,
                now=now,
            )
        for c in cars:
            await copy.upsert_vehicle(
                vehicle_id=c.vehicle_id,
                plate_type="02",
                plate_number=c.plate_number,
                vin=c.vin,
                owner_person_id=c.owner.person_id,
                now=now,
            )


async def new_car(db: Database, *, on_platform: bool = True, phone: bool = True) -> Car:
    owner = new_person(on_platform=on_platform, phone=phone, name="赵敏")
    car = Car(
        str(uuid.uuid4()),
        "渝A" + "".join(random.choice(_PLATE_CHARS) for _ in range(5)),
        with_vin_check_digit("LSVAU2180N2" + f"{random.randrange(10**6):06d}"),
        owner,
    )
    await register(db, owner, cars=(car,))
    return car


async def new_follower(db: Database) -> Person:
    person = new_person(name="刘洋")
    await register(db, person)
    return person


# -- calls ----------------------------------------------------------------------------------
async def ask(stub: FollowServiceAsyncStub, caller: common.Caller, car: Car) -> pb.FollowRequest:
    return await call(
        stub.RequestVehicleFollow,
        pb.RequestVehicleFollowRequest(
            caller=caller,
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=car.plate_number,
            vin=car.vin[-6:],
        ),
        timeout_s=30,
    )


async def approve(
    stub: FollowServiceAsyncStub, owner: common.Caller, request_id: str
) -> pb.FollowRequest:
    return await call(
        stub.ApproveRequest,
        pb.DecideRequestRequest(caller=owner, request_id=request_id),
        timeout_s=30,
    )


async def follow_by_app(
    stub: FollowServiceAsyncStub, caller: common.Caller, car: Car
) -> pb.FollowRequest:
    asked = await ask(stub, caller, car)
    return await approve(stub, car.owner.caller, asked.request_id)


async def submit(
    stub: FollowServiceAsyncStub, caller: common.Caller, request_id: str, code: str
) -> pb.Follow:
    return await call(
        stub.SubmitSmsCode,
        pb.SubmitSmsCodeRequest(caller=caller, request_id=request_id, code=code),
        timeout_s=30,
    )


async def unfollow(
    stub: FollowServiceAsyncStub, caller: common.Caller, follow_id: str
) -> pb.EndFollowResponse:
    return await call(
        stub.UnfollowVehicle, pb.EndFollowRequest(caller=caller, follow_id=follow_id), timeout_s=10
    )


async def code_sent_to(stub: FollowServiceAsyncStub, phone: str) -> list[str]:
    """The codes the recording adapter kept for the phone, newest first (the sandbox
    outbox staff read)."""
    answer = await call(
        stub.ListSandboxSms,
        pb.ListSandboxSmsRequest(caller=STAFF, phone=phone, limit=50),
        timeout_s=10,
    )
    return [m.params["code"] for m in answer.messages]


async def refusal(awaitable: Awaitable[Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        await awaitable
    return info.value


def shape(e: DomainError) -> tuple[str, str, str, dict[str, Any]]:
    """Everything a caller sees of an error."""
    return (e.code, e.message_zh, e.message_en, e.details)


async def outbox_of(settings: Settings, follow_id: str) -> list[Any]:
    rows = await fetch_rows(
        settings.database_url,
        "SELECT envelope FROM follow.outbox WHERE message_key = %s ORDER BY id",
        follow_id,
    )
    return [unpack(EventEnvelope.FromString(bytes(r[0]))) for r in rows]


async def scalar(settings: Settings, sql: str, *params: Any) -> Any:
    rows = await fetch_rows(settings.database_url, sql, *params)
    return rows[0][0]


def outcomes(results: list[Any], kind: type[Any]) -> tuple[list[Any], list[Any]]:
    won = [r for r in results if isinstance(r, kind)]
    lost = [r for r in results if not isinstance(r, kind)]
    assert all(isinstance(r, DomainError) for r in lost), lost
    return won, lost


# -- R-FOL-6: races --------------------------------------------------------------------------
async def test_r_fol_6_concurrent_approvals_never_overfill_a_vehicle(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    """R-FOL-4/6: two followers already; RACE more requests approved at once by the owner:
    exactly one gets the last slot, the rest are refused naming the vehicle's quota."""
    car = await new_car(follow_db)
    for _ in range(2):
        await follow_by_app(follow, stranger(), car)
    asked = [await ask(follow, stranger(), car) for _ in range(RACE)]
    results = await asyncio.gather(
        *(approve(follow, car.owner.caller, a.request_id) for a in asked),
        return_exceptions=True,
    )
    won, lost = outcomes(results, pb.FollowRequest)
    assert len(won) == 1
    assert {(e.code, e.details["quota"]) for e in lost} == {
        ("FOLLOW_QUOTA_EXCEEDED", "vehicle_followers")
    }
    # the message names the quota, across gRPC too
    assert all("3 followers" in e.message_en and "3 人" in e.message_zh for e in lost)
    active = await scalar(
        test_settings,
        "SELECT count(*) FROM follow.follows WHERE vehicle_id = %s AND ended_at IS NULL",
        car.vehicle_id,
    )
    assert active == 3
    waiting = await scalar(
        test_settings,
        "SELECT count(*) FROM follow.follow_requests WHERE vehicle_id = %s"
        " AND state = 'pending_owner_approval'",
        car.vehicle_id,
    )
    assert waiting == RACE - 1  # refused approvals leave the requests waiting


@pytest.mark.parametrize("story", ["last_chance", "last_chance_and_last_slot"])
async def test_r_fol_6_concurrent_approvals_never_overspend_one_users_quotas(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings, story: str
) -> None:
    """R-FOL-3/6: a user with one chance left (and, in the second story, one active slot
    left) has RACE requests approved at once by RACE owners: exactly one becomes active."""
    me = await new_follower(follow_db)
    first, second = await new_car(follow_db), await new_car(follow_db)
    done = await follow_by_app(follow, me.caller, first)
    await unfollow(follow, me.caller, done.follow_id)  # the chance is not given back
    kept = await follow_by_app(follow, me.caller, second)
    if story == "last_chance":
        await unfollow(follow, me.caller, kept.follow_id)
    cars = [await new_car(follow_db) for _ in range(RACE)]
    asked = [await ask(follow, me.caller, c) for c in cars]
    results = await asyncio.gather(
        *(approve(follow, c.owner.caller, a.request_id) for c, a in zip(cars, asked, strict=True)),
        return_exceptions=True,
    )
    won, lost = outcomes(results, pb.FollowRequest)
    assert len(won) == 1
    assert {e.code for e in lost} == {"FOLLOW_QUOTA_EXCEEDED"}
    assert {e.details["quota"] for e in lost} <= {"chances_this_year", "active_vehicle_follows"}
    key = f"user:{me.user_id}"
    year_start = datetime(datetime.now(SHANGHAI).year, 1, 1, tzinfo=SHANGHAI)
    started = await scalar(
        test_settings,
        "SELECT count(*) FROM follow.follows WHERE follower_key = %s AND started_at >= %s",
        key,
        year_start,
    )
    active = await scalar(
        test_settings,
        "SELECT count(*) FROM follow.follows WHERE follower_key = %s AND ended_at IS NULL",
        key,
    )
    assert started == 3
    assert active == (1 if story == "last_chance" else 2)
    overview = await call(follow.ListFollows, pb.ListFollowsRequest(caller=me.caller), timeout_s=10)
    assert (overview.chances_left_this_year, overview.active) == (0, active)
    assert len(overview.pending_requests) == RACE - 1


# -- R-SMS-1 -----------------------------------------------------------------------------------
async def test_r_sms_1_100_concurrent_requests_to_one_phone_send_exactly_one_sms(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    car = await new_car(follow_db, on_platform=False)
    assert car.owner.phone is not None
    results = await asyncio.gather(
        *(ask(follow, stranger(), car) for _ in range(100)), return_exceptions=True
    )
    won, lost = outcomes(results, pb.FollowRequest)
    assert len(won) == 1 and won[0].state == "pending_sms_code"
    assert {e.code for e in lost} == {"SMS_RESEND_TOO_SOON"}
    assert all(0 < e.details["retry_after_s"] <= 60 for e in lost)
    assert len(await code_sent_to(follow, car.owner.phone)) == 1
    requests = await scalar(
        test_settings,
        "SELECT count(*) FROM follow.follow_requests WHERE vehicle_id = %s",
        car.vehicle_id,
    )
    assert requests == 1  # the refused ones left nothing behind


async def test_r_sms_1_five_wrong_codes_void_it_and_the_right_one_then_fails(
    follow: FollowServiceAsyncStub, follow_db: Database
) -> None:
    car = await new_car(follow_db, on_platform=False)
    assert car.owner.phone is not None
    me = stranger()
    asked = await ask(follow, me, car)
    assert asked.sms_phone_masked == car.owner.phone[:3] + "****" + car.owner.phone[-4:]
    (right,) = await code_sent_to(follow, car.owner.phone)
    wrong = "000000" if right != "000000" else "111111"
    for left in (4, 3, 2, 1):
        e = await refusal(submit(follow, me, asked.request_id, wrong))
        assert (e.code, e.details) == ("SMS_CODE_WRONG", {"attempts_left": left})
    e = await refusal(submit(follow, me, asked.request_id, wrong))
    assert (e.code, e.details) == ("SMS_CODE_EXPIRED", {"reason": "void"})
    e = await refusal(submit(follow, me, asked.request_id, right))
    assert e.code == "FOLLOW_REQUEST_NOT_PENDING"
    listed = await call(follow.ListFollows, pb.ListFollowsRequest(caller=me), timeout_s=10)
    assert (list(listed.follows), list(listed.pending_requests)) == ([], [])


async def test_r_fol_2_the_right_code_makes_an_sms_follow_for_a_year(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    car = await new_car(follow_db, on_platform=False)
    assert car.owner.phone is not None
    me = (await new_follower(follow_db)).caller
    asked = await ask(follow, me, car)
    assert asked.plate_number == car.plate_number[:2] + "***" + car.plate_number[-2:]
    (code,) = await code_sent_to(follow, car.owner.phone)
    followed = await submit(follow, me, asked.request_id, code)
    started = timestamp_from_proto(followed.started_at)
    expires = timestamp_from_proto(followed.expires_at)
    assert started is not None and expires == started + timedelta(days=365)
    assert (followed.consent, followed.plate_number) == ("sms", car.plate_number)
    (event,) = await outbox_of(test_settings, followed.follow_id)
    assert isinstance(event, events.FollowStarted)
    assert (event.consent, timestamp_from_proto(event.expires_at)) == ("sms", expires)


# -- NOT_FOUND for another's request or follow ---------------------------------------------------
async def test_every_rpc_answers_anothers_request_or_follow_like_an_unknown_id(
    follow: FollowServiceAsyncStub, follow_db: Database
) -> None:
    sms_car = await new_car(follow_db, on_platform=False)
    app_car = await new_car(follow_db)
    me = await new_follower(follow_db)
    sms_request = await ask(follow, me.caller, sms_car)
    app_request = await ask(follow, me.caller, app_car)
    other_car = await new_car(follow_db)
    followed = await follow_by_app(follow, me.caller, other_car)
    licence = await follow_a_licence(follow, follow_db, me.caller)
    other = stranger()
    other_owner = (await new_car(follow_db)).owner.caller

    cases: list[tuple[str, Attempt]] = [
        (sms_request.request_id, lambda i: submit(follow, other, i, "123456")),
        (
            app_request.request_id,
            lambda i: call(
                follow.ApproveRequest,
                pb.DecideRequestRequest(caller=other_owner, request_id=i),
                timeout_s=10,
            ),
        ),
        (
            app_request.request_id,
            lambda i: call(
                follow.DeclineRequest,
                pb.DecideRequestRequest(caller=me.caller, request_id=i),  # the requester
                timeout_s=10,
            ),
        ),
        (followed.follow_id, lambda i: unfollow(follow, other, i)),
        (
            followed.follow_id,
            lambda i: call(
                follow.RevokeFollower,
                pb.EndFollowRequest(caller=other_owner, follow_id=i),
                timeout_s=10,
            ),
        ),
        (
            licence.follow_id,
            lambda i: call(
                follow.UnfollowLicence,
                pb.EndFollowRequest(caller=other, follow_id=i),
                timeout_s=10,
            ),
        ),
    ]
    for real_id, attempt in cases:
        foreign = await refusal(attempt(real_id))
        unknown = await refusal(attempt(str(uuid.uuid4())))
        garbage = await refusal(attempt("not-a-uuid"))
        assert shape(foreign) == shape(unknown) == shape(garbage)
        assert foreign.code in {"FOLLOW_REQUEST_NOT_FOUND", "FOLLOW_NOT_FOUND"}
    # nothing changed: the owner still sees the request, the follower still follows
    incoming = await call(
        follow.ListIncomingRequests,
        pb.ListIncomingRequestsRequest(caller=app_car.owner.caller),
        timeout_s=10,
    )
    assert [r.request_id for r in incoming.requests] == [app_request.request_id]
    mine = await call(follow.ListFollows, pb.ListFollowsRequest(caller=me.caller), timeout_s=10)
    assert {f.follow_id for f in mine.follows} == {followed.follow_id, licence.follow_id}


# -- R-FOL-5: the expiry job --------------------------------------------------------------------
async def run_to_end(stub: FollowServiceAsyncStub, job: str) -> int:
    checkpoint, total = "", 0
    for _ in range(1000):  # bounded: the job pages through every lapsed row of the session
        batch = await call(
            stub.RunJob,
            jobs_pb2.RunJobRequest(job=job, checkpoint=checkpoint, batch_size=50),
            timeout_s=60,
        )
        checkpoint, total = batch.checkpoint, total + batch.items_done
        if batch.done:
            return total
    raise AssertionError(f"{job} did not finish")


async def test_r_fol_5_the_job_ends_a_year_old_sms_follow_once(
    follow: FollowServiceAsyncStub,
    follow_db: Database,
    test_settings: Settings,
) -> None:
    car = await new_car(follow_db, on_platform=False)
    assert car.owner.phone is not None
    me = (await new_follower(follow_db)).caller
    asked = await ask(follow, me, car)
    (code,) = await code_sent_to(follow, car.owner.phone)
    followed = await submit(follow, me, asked.request_id, code)
    async with follow_db.transaction() as conn:  # a year passes
        await conn.execute(
            "UPDATE follows SET started_at = started_at - interval '366 days',"
            " expires_at = expires_at - interval '366 days' WHERE follow_id = %s",
            (followed.follow_id,),
        )
    listed = await call(follow.ListFollows, pb.ListFollowsRequest(caller=me), timeout_s=10)
    assert list(listed.follows) == []  # lapsed: no longer shown even before the job
    assert await run_to_end(follow, "expire_sms_follows") >= 1
    published = await outbox_of(test_settings, followed.follow_id)
    assert [type(e).__name__ for e in published] == ["FollowStarted", "FollowEnded"]
    ended = published[1]
    assert (ended.reason, ended.follower_user_id, ended.vehicle_id) == (
        "expired",
        me.user_id,
        car.vehicle_id,
    )
    await run_to_end(follow, "expire_sms_follows")  # twice: nothing more
    assert len(await outbox_of(test_settings, followed.follow_id)) == 2
    assert (
        await scalar(
            test_settings,
            "SELECT end_reason FROM follow.follows WHERE follow_id = %s",
            followed.follow_id,
        )
        == "expired"
    )


async def test_r_fol_2_the_job_expires_requests_nobody_acted_on(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    car = await new_car(follow_db)
    asked = await ask(follow, stranger(), car)
    async with follow_db.transaction() as conn:
        await conn.execute(
            "UPDATE follow_requests SET expires_at = now() - interval '1 minute'"
            " WHERE request_id = %s",
            (asked.request_id,),
        )
    assert await run_to_end(follow, "expire_follow_requests") >= 1
    state = await scalar(
        test_settings,
        "SELECT state FROM follow.follow_requests WHERE request_id = %s",
        asked.request_id,
    )
    assert state == "expired"
    e = await refusal(approve(follow, car.owner.caller, asked.request_id))
    assert e.code == "FOLLOW_REQUEST_NOT_PENDING"
    assert (
        await refusal(call(follow.RunJob, jobs_pb2.RunJobRequest(job="nope"), timeout_s=5))
    ).code == "UNKNOWN_JOB"


# -- events and lists ------------------------------------------------------------------------------
async def follow_a_licence(
    stub: FollowServiceAsyncStub, db: Database, caller: common.Caller
) -> pb.Follow:
    holder = new_person(name="王强")
    licence_id = str(uuid.uuid4())
    born = date(1960, 1, 1) + timedelta(days=random.randrange(15_000))
    first17 = f"500103{born:%Y%m%d}{random.randrange(10**3):03d}"
    licence_no = first17 + id_check_char(first17)
    file_no = f"{random.randrange(10**12):012d}"
    await register(db, holder)
    async with db.transaction() as conn:
        await PostgresRegistryCopy(conn).upsert_licence(
            licence_id=licence_id,
            person_id=holder.person_id,
            licence_no=licence_no,
            file_no=file_no,
            now=datetime.now(UTC),
        )
    followed = await call(
        stub.FollowLicence,
        pb.FollowLicenceRequest(
            caller=caller, name="王 强", licence_no=licence_no, file_no=file_no
        ),
        timeout_s=10,
    )
    assert (followed.licence_id, followed.licence_holder_name_masked) == (licence_id, "王*")
    return followed


async def test_events_carry_what_the_query_consumer_reads_and_lists_show_each_party_its_view(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    car = await new_car(follow_db)
    me = await new_follower(follow_db)
    asked = await ask(follow, me.caller, car)
    incoming = await call(
        follow.ListIncomingRequests,
        pb.ListIncomingRequestsRequest(caller=car.owner.caller),
        timeout_s=10,
    )
    (seen,) = incoming.requests
    assert (seen.request_id, seen.requester_name_masked, seen.plate_number) == (
        asked.request_id,
        "刘*",
        car.plate_number,
    )
    approved = await approve(follow, car.owner.caller, asked.request_id)
    assert approved.state == "approved" and approved.follow_id
    followers = await call(
        follow.ListFollowers, pb.ListFollowersRequest(caller=car.owner.caller), timeout_s=10
    )
    (f,) = followers.followers
    assert (f.follower_id, f.follower_name_masked, f.consent) == (
        approved.follow_id,
        "刘*",
        "owner_app",
    )
    licence = await follow_a_licence(follow, follow_db, me.caller)
    listed = await call(follow.ListFollows, pb.ListFollowsRequest(caller=me.caller), timeout_s=10)
    assert [(x.follow_id, x.consent) for x in listed.follows] == [
        (approved.follow_id, "owner_app"),
        (licence.follow_id, "none"),
    ]
    assert (listed.active, listed.max_active, listed.chances_left_this_year) == (1, 2, 2)
    assert (listed.licence_follows, listed.max_licence_follows, listed.chances_per_year) == (
        1,
        5,
        3,
    )
    revoked = await call(
        follow.RevokeFollower,
        pb.EndFollowRequest(caller=car.owner.caller, follow_id=approved.follow_id),
        timeout_s=10,
    )
    assert (revoked.follower_user_id, revoked.follower_person_id, revoked.vehicle_id) == (
        me.user_id,
        me.person_id,
        car.vehicle_id,
    )
    started, ended = await outbox_of(test_settings, approved.follow_id)
    assert isinstance(started, events.FollowStarted) and isinstance(ended, events.FollowEnded)
    for e in (started, ended):
        assert (e.follow_id, e.follower_user_id, e.follower_person_id) == (
            approved.follow_id,
            me.user_id,
            me.person_id,
        )
        assert (e.target, e.vehicle_id, e.licence_id) == (
            events.FOLLOW_TARGET_VEHICLE,
            car.vehicle_id,
            "",
        )
    assert (started.consent, started.expires_at.seconds) == ("owner_app", 0)
    assert ended.reason == "revoked" and ended.ended_at.seconds > 0
    unfollowed = await call(
        follow.UnfollowLicence,
        pb.EndFollowRequest(caller=me.caller, follow_id=licence.follow_id),
        timeout_s=10,
    )
    assert unfollowed.target == events.FOLLOW_TARGET_LICENCE
    licence_events = await outbox_of(test_settings, licence.follow_id)
    assert [(type(e).__name__, e.target) for e in licence_events] == [
        ("FollowStarted", events.FOLLOW_TARGET_LICENCE),
        ("FollowEnded", events.FOLLOW_TARGET_LICENCE),
    ]
    assert licence_events[0].licence_id == licence.licence_id


async def test_seed_follow_is_sandbox_staff_only_and_idempotent(
    follow: FollowServiceAsyncStub, follow_db: Database, test_settings: Settings
) -> None:
    car = await new_car(follow_db)
    fan = await new_follower(follow_db)
    request = pb.SeedFollowRequest(
        caller=STAFF, follower_person_id=fan.person_id, vehicle_id=car.vehicle_id
    )
    first = await call(follow.SeedFollow, request, timeout_s=10)
    again = await call(follow.SeedFollow, request, timeout_s=10)
    assert first.follow_id == again.follow_id and first.consent == "owner_app"
    assert len(await outbox_of(test_settings, first.follow_id)) == 1
    as_user = pb.SeedFollowRequest(
        caller=fan.caller, follower_person_id=fan.person_id, vehicle_id=car.vehicle_id
    )
    assert (await refusal(call(follow.SeedFollow, as_user, timeout_s=10))).code == "SANDBOX_ONLY"
    unknown = pb.SeedFollowRequest(
        caller=STAFF, follower_person_id=fan.person_id, vehicle_id=str(uuid.uuid4())
    )
    assert (await refusal(call(follow.SeedFollow, unknown, timeout_s=10))).code == (
        "FOLLOW_VEHICLE_NOT_FOUND"
    )
