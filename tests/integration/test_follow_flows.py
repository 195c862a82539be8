"""The SANDBOX.md follow flows through the gateway and every real service (issue 10:
R-FOL-1..8, R-SMS-1..3, R-X-3): 刘洋 follows 赵敏's car by her approval and 陈静's by the
SMS code staff read from the sandbox outbox, unfollows, is revoked by 张伟, spends his third
chance and is refused the fourth; 渝A99999 is refused as full; an SMS follow expires through
the nightly job; wrong codes void a code; licence follows come and go; and nobody reaches
another user's request or follow.

Read-your-writes (issue 10: "after unfollow, revocation or expiry the former follower gets
404 on that vehicle's violations at once"): after a confirmed SMS code, an unfollow, a
revocation and a licence follow or unfollow, the gateway answers only once the query read
model agrees (``cqgateway.access_sync``), so the very next request here is checked without
polling. An owner's approval is not awaited (its answer does not name the requester), and
the expiry job runs outside the gateway: those two are polled. The follow row's
``expires_at`` is set in the past directly in the ``follow`` schema to age it (the service
runs on the system clock); with real time the read model ends access at ``expires_at``
itself, before the job records it.

Why an isolated cluster: the walks change the roster's people (follows, chances), and the
roster is shared by the whole test session. Stories that need a phone of their own (SMS
cooldown R-SMS-1, 60 s per phone) use fresh owners who are not on the platform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cqcommon.clock import SystemClock, today_in_shanghai
from cqcommon.errors import DomainError
from cqcommon.grpc_client import call, make_channel
from cqcommon.settings import Settings
from cqdev.stack import Stack
from cqdev.testing import Cluster, Owner, error_body, eventually, fetch_rows, isolated_cluster
from cqdev.testing import new_owner as fresh_owner
from cqregistry.domain.roster import SandboxRoster, sandbox_roster
from cqregistry.entrypoints import loader
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1.types_pb2 import Caller
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.follow.v1 import follow_pb2_grpc as fol_grpc

pytestmark = pytest.mark.integration

ZHANG, LI, WANG, LIU, ZHAO = (
    "2088000000000001",
    "2088000000000002",
    "2088000000000003",
    "2088000000000004",
    "2088000000000005",
)
CHEN_PHONE = "13900000005"
#: the roster's loader acts as sandbox staff when it seeds follows
SEEDER = Caller(staff_id="roster-loader", staff_role="clerk")


# -- the module's cluster with the roster ------------------------------------------------------
@pytest.fixture(scope="module")
def roster() -> SandboxRoster:
    return sandbox_roster(today_in_shanghai(SystemClock()))


async def follow_call(c: Cluster, method: str, request: Any) -> Any:
    """One FollowService call (the jobs and the roster's seeding are not HTTP endpoints)."""
    channel = make_channel(c.settings.follow_service_addr)
    try:
        stub = fol_grpc.FollowServiceStub(channel)
        return await call(getattr(stub, method), request, timeout_s=10)
    finally:
        await channel.close(None)


async def seed_roster_follows(c: Cluster, roster: SandboxRoster) -> None:
    """The follows the roster starts with (渝A99999's three followers), through SeedFollow
    as the roster loader seeds them: idempotent, so whether the loader got there first or
    not, the roster's state is the same; retried until the follow service has the
    registry's records."""
    for demo in roster.follows:
        request = fol.SeedFollowRequest(
            caller=SEEDER,
            follower_person_id=str(demo.follower_person_id),
            vehicle_id=str(demo.vehicle_id),
        )

        async def seeded(request: fol.SeedFollowRequest = request) -> bool:
            try:
                await follow_call(c, "SeedFollow", request)
            except DomainError as exc:
                if exc.code in ("FOLLOW_VEHICLE_NOT_FOUND", "NOT_FOUND"):
                    return False  # the registry events have not arrived yet
                raise
            return True

        await eventually(seeded)


@pytest.fixture(scope="module")
async def sandbox(
    stack: Stack, test_settings: Settings, roster: SandboxRoster
) -> AsyncIterator[Cluster]:
    """A cluster of this module's own with the SANDBOX.md roster loaded (see the docstring)."""
    settings = test_settings.model_copy(update={"sandbox_mode": True})
    async with isolated_cluster(stack, settings, label="follows") as cluster:
        summary = await loader.load_sandbox(
            cluster.settings, today=today_in_shanghai(SystemClock())
        )
        assert summary.refused == 0, summary.notes
        await seed_roster_follows(cluster, roster)
        yield cluster


@pytest.fixture(scope="module")
async def clerk(sandbox: Cluster) -> dict[str, str]:
    r = await sandbox.http.post(
        "/internal/v1/auth/login",
        json={"username": "clerk01", "password": sandbox.settings.sandbox_staff_password},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


# -- what a persona does ------------------------------------------------------------------------------
def vin6(roster: SandboxRoster, plate: str) -> str:
    return roster.vehicle(plate).vin[-6:]


def vehicle_id(roster: SandboxRoster, plate: str) -> str:
    return str(roster.vehicle(plate).vehicle_id)


async def ask(
    c: Cluster,
    user: dict[str, str],
    plate: str,
    vin: str,
    *,
    not_yet: tuple[str, ...] = ("FOLLOW_VEHICLE_NOT_FOUND",),
) -> httpx.Response:
    """``POST /api/v1/follows/vehicles``, retried while the follow service's registry copy
    does not have the vehicle yet (registry events are asynchronous): while it answers one
    of the ``not_yet`` codes."""
    body = {"plate_type": "02", "plate_number": plate, "vin": vin}

    async def answered() -> httpx.Response | None:
        r = await c.http.post("/api/v1/follows/vehicles", json=body, headers=user)
        if r.status_code >= 400 and error_body(r)["code"] in not_yet:
            return None
        return r

    return await eventually(answered)


async def violations(c: Cluster, user: dict[str, str], **subject: str) -> int:
    """The status of the user's next request for a vehicle's or licence's violations."""
    r = await c.http.get("/api/v1/violations", params=subject, headers=user)
    assert r.status_code in (200, 404), r.text
    return r.status_code


async def sees_eventually(c: Cluster, user: dict[str, str], status: int, **subject: str) -> None:
    async def reached() -> bool:
        return await violations(c, user, **subject) == status

    await eventually(reached)


async def newest_code(c: Cluster, clerk: dict[str, str], phone: str) -> str:
    """The code in the newest SMS to ``phone``, as staff read it in the sandbox outbox."""
    r = await c.http.get(
        "/internal/v1/sandbox/sms", params={"phone": phone, "limit": "1"}, headers=clerk
    )
    assert r.status_code == 200, r.text
    (message,) = r.json()["messages"]
    assert message["phone"] == phone
    return str(message["params"]["code"])


async def follows_of(c: Cluster, user: dict[str, str]) -> dict[str, Any]:
    r = await c.http.get("/api/v1/follows", headers=user)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def approve(c: Cluster, owner: dict[str, str], request_id: str) -> dict[str, Any]:
    incoming = await c.http.get("/api/v1/follow-requests/incoming", headers=owner)
    assert incoming.status_code == 200, incoming.text
    assert request_id in [x["request_id"] for x in incoming.json()["requests"]]
    r = await c.http.post(f"/api/v1/follow-requests/{request_id}/approve", headers=owner)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["state"] == "approved" and body["follow_id"], body
    return body


async def off_platform_owner(c: Cluster) -> Owner:
    """A fresh owner who is not on the platform (consent by SMS to their own phone)."""
    owner = dataclasses.replace(fresh_owner(), alipay_user_id="")
    await c.import_records(owner.records())
    return owner


async def ask_fresh(c: Cluster, user: dict[str, str], owner: Owner) -> httpx.Response:
    """Ask to follow a fresh owner's car. The owner's person record (with the phone) and the
    vehicle travel on different topics: until both are there the follow service answers
    ``FOLLOW_VEHICLE_NOT_FOUND`` (never ``FOLLOW_NO_CONSENT_ROUTE``)."""
    return await ask(
        c, user, owner.plate_number, owner.vin[-6:], not_yet=("FOLLOW_VEHICLE_NOT_FOUND",)
    )


async def follow_by_sms(
    c: Cluster, clerk: dict[str, str], user: dict[str, str], owner: Owner
) -> dict[str, Any]:
    r = await ask_fresh(c, user, owner)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pending_sms_code"
    code = await newest_code(c, clerk, owner.phone)
    done = await c.http.post(
        f"/api/v1/follow-requests/{r.json()['request_id']}/sms-code",
        json={"code": code},
        headers=user,
    )
    assert done.status_code == 201, done.text
    body: dict[str, Any] = done.json()
    return body


# -- 刘洋's walk ------------------------------------------------------------------------------------------
async def test_r_fol_2_3_7_liu_yang_follows_by_approval_and_sms_unfollows_is_revoked_and_has_three_chances(
    sandbox: Cluster, roster: SandboxRoster, clerk: dict[str, str]
) -> None:
    """SANDBOX.md: 刘洋 follows nobody and has 3 chances. R-FOL-2 by approval (赵敏) and by
    SMS code (陈静, read from the outbox); R-FOL-7 unfollow and revocation take access away
    on the very next request; R-FOL-3 the third chance works and the fourth is refused
    (``chances_this_year``), unfollowing gave none back; R-X-3 owners see him, masked."""
    c = sandbox
    liu, zhao, zhang = await c.login(LIU), await c.login(ZHAO), await c.login(ZHANG)
    zhao_car, chen_car, zhang_car = (
        vehicle_id(roster, "渝A67890"),
        vehicle_id(roster, "渝C34567"),
        vehicle_id(roster, "渝A12345"),
    )
    start = await follows_of(c, liu)
    assert (start["active"], start["chances_left_this_year"], start["follows"]) == (0, 3, [])

    # 1. 赵敏 is on the platform: she approves in the app (R-FOL-2)
    assert await violations(c, liu, vehicle_id=zhao_car) == 404
    asked = await ask(c, liu, "渝A67890", vin6(roster, "渝A67890"))
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending_owner_approval" and request["plate_number"] != "渝A67890"
    incoming = (await c.http.get("/api/v1/follow-requests/incoming", headers=zhao)).json()
    (seen,) = [x for x in incoming["requests"] if x["request_id"] == request["request_id"]]
    assert (seen["requester_name_masked"], seen["plate_number"]) == ("刘*", "渝A67890")
    approved = await approve(c, zhao, request["request_id"])
    # the approval answers once 刘洋 can read: his very next request sees the car
    assert await violations(c, liu, vehicle_id=zhao_car) == 200
    followers = (await c.http.get("/api/v1/followers", headers=zhao)).json()["followers"]
    (mine,) = [f for f in followers if f["follower_id"] == approved["follow_id"]]
    assert (mine["follower_name_masked"], mine["consent"]) == ("刘*", "owner_app")
    assert mine["since"] and mine["expires_at"] is None

    # 2. 陈静 is not: a code goes to her phone, staff read it in the sandbox outbox
    asked = await ask(c, liu, "渝C34567", vin6(roster, "渝C34567"))
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending_sms_code"
    assert request["sms_phone_masked"] == "139****0005" and request["sms_resend_at"]
    code = await newest_code(c, clerk, CHEN_PHONE)
    r = await c.http.post(
        f"/api/v1/follow-requests/{request['request_id']}/sms-code",
        json={"code": code},
        headers=liu,
    )
    assert r.status_code == 201, r.text
    by_sms = r.json()
    assert (by_sms["consent"], by_sms["vehicle_id"]) == ("sms", chen_car)
    assert by_sms["expires_at"] is not None  # R-FOL-5: one year
    assert await violations(c, liu, vehicle_id=chen_car) == 200  # at once
    mid = await follows_of(c, liu)
    assert (mid["active"], mid["max_active"], mid["chances_left_this_year"]) == (2, 2, 1)

    # 3. R-FOL-7: he unfollows 陈静's car; his very next request is refused
    r = await c.http.delete(f"/api/v1/follows/vehicles/{by_sms['follow_id']}", headers=liu)
    assert r.status_code == 204, r.text
    assert await violations(c, liu, vehicle_id=chen_car) == 404
    after = await follows_of(c, liu)
    assert (after["active"], after["chances_left_this_year"]) == (1, 1)  # none given back

    # 4. R-FOL-3: the third chance works (张伟 approves) ...
    asked = await ask(c, liu, "渝A12345", vin6(roster, "渝A12345"))
    assert asked.status_code == 201, asked.text
    third = await approve(c, zhang, asked.json()["request_id"])
    await sees_eventually(c, liu, 200, vehicle_id=zhang_car)
    assert (await follows_of(c, liu))["chances_left_this_year"] == 0

    # 5. R-FOL-7: ... and 张伟 revokes it; the very next request is refused
    followers = (await c.http.get("/api/v1/followers", headers=zhang)).json()["followers"]
    assert third["follow_id"] in [f["follower_id"] for f in followers]
    r = await c.http.delete(f"/api/v1/followers/{third['follow_id']}", headers=zhang)
    assert r.status_code == 204, r.text
    assert await violations(c, liu, vehicle_id=zhang_car) == 404

    # 6. the fourth chance is refused, though he follows only one car now
    refused = await ask(c, liu, "渝C34567", vin6(roster, "渝C34567"))
    assert refused.status_code == 429, refused.text
    assert error_body(refused)["code"] == "FOLLOW_QUOTA_EXCEEDED"
    assert error_body(refused)["details"]["quota"] == "chances_this_year"
    end = await follows_of(c, liu)
    assert (end["active"], end["chances_left_this_year"]) == (1, 0)
    assert [f["vehicle_id"] for f in end["follows"]] == [zhao_car]


# -- quotas of a vehicle, expiry, wrong codes --------------------------------------------------------
async def test_r_fol_4_a_vehicle_followed_by_three_users_is_refused(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """SANDBOX.md: 渝A99999 is already followed by 3 users; a 4th is refused with the quota
    named, before any SMS goes to its owner."""
    c = sandbox
    wang = await c.login(WANG)
    r = await ask(c, wang, "渝A99999", vin6(roster, "渝A99999"))
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "FOLLOW_QUOTA_EXCEEDED"
    assert error_body(r)["details"]["quota"] == "vehicle_followers"
    assert (await follows_of(c, wang))["chances_left_this_year"] == 3


async def test_r_fol_5_an_sms_follow_ends_with_the_nightly_job_and_access_with_it(
    sandbox: Cluster, clerk: dict[str, str]
) -> None:
    """R-FOL-5, R-JOB-4: an SMS-authorised follow past its year is ended by
    ``expire_sms_follows``; the former follower's violations answer 404 (polled: the job
    runs outside the gateway), and the chance stays spent."""
    c = sandbox
    wang = await c.login(WANG)
    owner = await off_platform_owner(c)
    follow = await follow_by_sms(c, clerk, wang, owner)
    assert await violations(c, wang, vehicle_id=owner.vehicle_id) == 200
    aged = await fetch_rows(
        c.settings.database_url,
        "UPDATE follow.follows SET expires_at = now() - interval '1 second'"
        " WHERE follow_id = %s RETURNING follow_id",
        follow["follow_id"],
    )
    assert len(aged) == 1
    done, checkpoint, ended = False, "", 0
    for _ in range(100):  # bounded: one batch per call
        batch = await follow_call(
            c,
            "RunJob",
            jobs_pb2.RunJobRequest(job="expire_sms_follows", checkpoint=checkpoint, batch_size=50),
        )
        ended += batch.items_done
        checkpoint, done = batch.checkpoint, batch.done
        if done:
            break
    assert done and ended >= 1
    await sees_eventually(c, wang, 404, vehicle_id=owner.vehicle_id)
    listing = await follows_of(c, wang)
    assert follow["follow_id"] not in [f["follow_id"] for f in listing["follows"]]
    assert listing["chances_left_this_year"] == 2


async def test_r_sms_1_wrong_codes_void_the_code_and_the_right_one_no_longer_counts(
    sandbox: Cluster, clerk: dict[str, str]
) -> None:
    """R-SMS-1: wrong entries answer 400 with the attempts left; the fifth voids the code
    (409), so a sixth entry, even the right code, follows nothing."""
    c = sandbox
    li = await c.login(LI)
    owner = await off_platform_owner(c)
    r = await ask_fresh(c, li, owner)
    assert r.status_code == 201, r.text
    request_id = r.json()["request_id"]
    code = await newest_code(c, clerk, owner.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers: list[tuple[int, str, Any]] = []
    for _ in range(5):
        r = await c.http.post(
            f"/api/v1/follow-requests/{request_id}/sms-code", json={"code": wrong}, headers=li
        )
        answers.append((r.status_code, error_body(r)["code"], error_body(r)["details"]))
    assert answers[0] == (400, "SMS_CODE_WRONG", {"attempts_left": 4})
    assert [a[2].get("attempts_left") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4][:2] == (409, "SMS_CODE_EXPIRED")
    sixth = await c.http.post(
        f"/api/v1/follow-requests/{request_id}/sms-code", json={"code": code}, headers=li
    )
    assert sixth.status_code == 409, sixth.text
    assert error_body(sixth)["code"] in ("SMS_CODE_EXPIRED", "FOLLOW_REQUEST_NOT_PENDING")
    assert await violations(c, li, vehicle_id=owner.vehicle_id) == 404
    listing = await follows_of(c, li)
    assert request_id not in [p["request_id"] for p in listing["pending_requests"]]
    assert listing["chances_left_this_year"] == 3


# -- licences, refusals, other users' records ---------------------------------------------------------
async def test_r_fol_8_a_licence_follow_and_its_removal_change_access_at_once(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """R-FOL-8: name + licence number + file number, no consent step; the follower sees the
    licence's violations at once and loses them at once; one's own licence is refused and a
    wrong file number answers like no such licence."""
    c = sandbox
    wang, zhao = await c.login(WANG), await c.login(ZHAO)
    person = roster.person(ZHAO)
    licence = roster.licence_of(person)
    assert licence is not None
    body = {"name": person.name, "licence_no": licence.licence_no, "file_no": licence.file_no}
    lid = str(licence.licence_id)
    assert await violations(c, wang, licence_id=lid) == 404

    async def followed() -> httpx.Response | None:
        r = await c.http.post("/api/v1/follows/licences", json=body, headers=wang)
        if r.status_code == 404:  # the follow service's registry copy is not there yet
            return None
        return r

    r = await eventually(followed)
    assert r.status_code == 201, r.text
    follow = r.json()
    assert (follow["target"], follow["licence_id"], follow["consent"]) == ("licence", lid, "none")
    assert follow["licence_holder_name_masked"] == "赵*"
    assert await violations(c, wang, licence_id=lid) == 200  # at once
    assert (await follows_of(c, wang))["licence_follows"] == 1
    again = await c.http.post("/api/v1/follows/licences", json=body, headers=wang)
    assert (again.status_code, error_body(again)["code"]) == (409, "ALREADY_FOLLOWING")

    r = await c.http.delete(f"/api/v1/follows/licences/{follow['follow_id']}", headers=wang)
    assert r.status_code == 204, r.text
    assert await violations(c, wang, licence_id=lid) == 404  # at once
    assert (await follows_of(c, wang))["licence_follows"] == 0

    own = await c.http.post("/api/v1/follows/licences", json=body, headers=zhao)
    assert (own.status_code, error_body(own)["code"]) == (403, "FOLLOW_OWN_LICENCE")
    wrong = body | {"file_no": "999999999999"}
    r = await c.http.post("/api/v1/follows/licences", json=wrong, headers=wang)
    assert (r.status_code, error_body(r)["code"]) == (404, "FOLLOW_LICENCE_NOT_FOUND")


async def test_r_fol_1_a_wrong_vin_is_no_such_vehicle_and_ones_own_car_is_refused(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    c = sandbox
    zhao = await c.login(ZHAO)
    own = await ask(c, zhao, "渝A67890", vin6(roster, "渝A67890"))
    assert (own.status_code, error_body(own)["code"]) == (403, "FOLLOW_OWN_VEHICLE")
    r = await c.http.post(
        "/api/v1/follows/vehicles",
        json={"plate_type": "02", "plate_number": "渝A12345", "vin": "000000"},
        headers=zhao,
    )
    assert (r.status_code, error_body(r)["code"]) == (404, "FOLLOW_VEHICLE_NOT_FOUND")
    unknown = await c.http.post(
        "/api/v1/follows/vehicles",
        json={"plate_type": "02", "plate_number": "渝Z00001", "vin": "000000"},
        headers=zhao,
    )
    assert error_body(unknown) == error_body(r)  # indistinguishable


async def test_every_follow_endpoint_answers_404_for_another_users_request_or_follow(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """A request or follow of someone else answers exactly like an unknown id (API.md: 404
    "not found or not yours"), on every follow endpoint that takes an id."""
    c = sandbox
    li, wang, zhao = await c.login(LI), await c.login(WANG), await c.login(ZHAO)
    asked = await ask(c, li, "渝A67890", vin6(roster, "渝A67890"))
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request_id"]

    def code_of(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, error_body(r)["code"]

    not_request = (404, "FOLLOW_REQUEST_NOT_FOUND")
    for who in (wang, li):  # 李娜 is the requester, not the owner: she cannot decide it
        for action in ("approve", "decline"):
            r = await c.http.post(f"/api/v1/follow-requests/{request_id}/{action}", headers=who)
            assert code_of(r) == not_request, (action, r.text)
    for who in (wang, zhao):  # only the requester enters the code
        r = await c.http.post(
            f"/api/v1/follow-requests/{request_id}/sms-code",
            json={"code": "123456"},
            headers=who,
        )
        assert code_of(r) == not_request, r.text
    unknown = await c.http.post("/api/v1/follow-requests/no-such-id/approve", headers=zhao)
    assert code_of(unknown) == not_request and error_body(unknown) == error_body(r)

    follow_id = (await approve(c, zhao, request_id))["follow_id"]
    not_follow = (404, "FOLLOW_NOT_FOUND")
    attempts = [
        (wang, f"/api/v1/follows/vehicles/{follow_id}"),
        (zhao, f"/api/v1/follows/vehicles/{follow_id}"),  # the owner is not the follower
        (wang, f"/api/v1/followers/{follow_id}"),  # not his car
        (li, f"/api/v1/followers/{follow_id}"),  # the follower is not the owner
        (wang, f"/api/v1/follows/licences/{follow_id}"),
        (li, f"/api/v1/follows/licences/{follow_id}"),  # a vehicle follow is no licence follow
    ]
    for who, path in attempts:
        r = await c.http.delete(path, headers=who)
        assert code_of(r) == not_follow, (path, r.text)
    await sees_eventually(c, li, 200, vehicle_id=vehicle_id(roster, "渝A67890"))
    wang_view = await follows_of(c, wang)
    assert follow_id not in [f["follow_id"] for f in wang_view["follows"]]
    assert follow_id not in [
        f["follower_id"]
        for f in (await c.http.get("/api/v1/followers", headers=wang)).json()["followers"]
    ]


def test_the_roster_knows_the_personas_of_these_walks(roster: SandboxRoster) -> None:
    """The flows' facts from SANDBOX.md: 陈静's phone, 渝A99999's three followers."""
    chen = next(p for p in roster.people if p.name == "陈静")
    assert chen.phone == CHEN_PHONE and chen.alipay_user_id is None
    full = roster.vehicle("渝A99999").vehicle_id
    assert len([f for f in roster.follows if f.vehicle_id == full]) == 3
    assert roster.person(LIU).name == "刘洋"
