"""The SANDBOX.md personas walk self-service handling through the gateway and every real
service (R-ADJ-1..9, R-X-2; issue 8's persona tests): 张伟 handles his two eligible
violations and is sent to a counter for the one over 200 yuan, which a counter then
handles; 李娜 meets the 12-point boundary; 王强's A2 licence keeps him from the
point-bearing one; 刘洋 proves 张伟's car and, after 张伟's owner face step, takes its points
on his own licence; nobody reaches another user's handling.

Why an isolated cluster: these walks change the roster's people (points, statuses,
decisions), and the roster is shared by the whole test session (test_public_ids.py loads
it too and expects SBX-ZW-03 unhandled, 渝A12345 with exactly its listed violations). So
the module runs its own in-process cluster on a database, Redis db and topic prefix of its
own (``cqdev.testing.isolated_cluster``) with the roster loaded there: the session's roster
is left as the other tests expect it, and every walk here starts from the roster's state
whatever ran before. Within the module each walk is independent of the others' order: a
walk compares its person's points before and after itself; 刘洋's walk uses a violation of
its own on 张伟's car (SBX-ZW-02 is 张伟's own walk's), and the counter hands SBX-ZW-03 to a
fresh driver at the desk, so no walk's counter points trip another walk's sync guard
(R-ADJ-6).

Face verification runs through the ``sandbox`` adapter (sandbox mode): every persona's
face "passes" at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cqcommon.clock import SystemClock, today_in_shanghai
from cqcommon.settings import Settings
from cqdev.stack import Stack
from cqdev.testing import (
    Cluster,
    Owner,
    error_body,
    eventually,
    isolated_cluster,
    new_owner,
    violation_body,
)
from cqregistry.domain.roster import SandboxRoster, sandbox_roster
from cqregistry.entrypoints import loader

pytestmark = pytest.mark.integration

ZHANG, LI, WANG, LIU = (
    "2088000000000001",
    "2088000000000002",
    "2088000000000003",
    "2088000000000004",
)


# -- the module's cluster with the roster ------------------------------------------------------
@pytest.fixture(scope="module")
def today() -> dt.date:
    return today_in_shanghai(SystemClock())


@pytest.fixture(scope="module")
def roster(today: dt.date) -> SandboxRoster:
    return sandbox_roster(today)


@pytest.fixture(scope="module")
async def sandbox(stack: Stack, test_settings: Settings, today: dt.date) -> AsyncIterator[Cluster]:
    """A cluster of this module's own with the SANDBOX.md roster loaded (see the docstring)."""
    settings = test_settings.model_copy(update={"sandbox_mode": True})
    async with isolated_cluster(stack, settings, label="personas") as cluster:
        summary = await loader.load_sandbox(cluster.settings, today=today)
        assert summary.refused == 0, summary.notes
        yield cluster


async def violation_id(
    c: Cluster, owner: dict[str, str], roster: SandboxRoster, record_id: str
) -> str:
    """The id adjudication gave the roster record ``record_id`` (it assigns violation ids),
    found in the owner's list of the car by its violation code (unique per roster car)."""
    listed = next(v for v in roster.violations if v.source_record_id == record_id)

    async def found() -> str | None:
        r = await c.http.get(
            "/api/v1/violations", params={"vehicle_id": str(listed.vehicle_id)}, headers=owner
        )
        if r.status_code == 404:  # the read model has not caught up yet
            return None
        assert r.status_code == 200, r.text
        return next(
            (
                str(v["violation_id"])
                for v in r.json()["violations"]
                if v["violation_code"] == listed.code
            ),
            None,
        )

    return await eventually(found)


# -- what a persona sees and does ------------------------------------------------------------------
def reason_codes(body: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in body["reasons"]]


async def detail(c: Cluster, user: dict[str, str], vid: str) -> dict[str, Any]:
    """The violation as the user sees it, once the read model has it and its hint is known."""

    async def seen() -> dict[str, Any] | None:
        r = await c.http.get(f"/api/v1/violations/{vid}", headers=user)
        if r.status_code == 404:  # the read model has not caught up yet
            return None
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        hint = body["online_handling"]
        return body if hint and hint["availability"] != "unknown" else None

    return await eventually(seen)


async def in_status(c: Cluster, user: dict[str, str], vid: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body = await detail(c, user, vid)
        return body if body["status"] == status else None

    return await eventually(reached)


async def me(c: Cluster, user: dict[str, str]) -> dict[str, Any]:
    """``/me`` once the read model has the person's licence."""

    async def loaded() -> dict[str, Any] | None:
        r = await c.http.get("/api/v1/me", headers=user)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["licence"] else None

    return await eventually(loaded)


def points_of(view: dict[str, Any]) -> int:
    return int(view["licence"]["points"]["points"])


async def points_reach(c: Cluster, user: dict[str, str], expected: int) -> dict[str, Any]:
    """``/me`` once the read model shows ``expected`` points on the user's licence."""

    async def reached() -> dict[str, Any] | None:
        view = await me(c, user)
        return view if points_of(view) == expected else None

    return await eventually(reached)


def vehicle_in(view: dict[str, Any], vehicle_id: str) -> dict[str, Any]:
    return next(v for v in view["vehicles"] if v["vehicle_id"] == vehicle_id)


async def start(c: Cluster, user: dict[str, str], vid: str) -> dict[str, Any]:
    async def started() -> httpx.Response | None:
        r = await c.http.post(f"/api/v1/violations/{vid}/handlings", headers=user)
        # a fresh owner's licence reaches adjudication by its own registry event, which can
        # trail the vehicle's: until then adjudication rightly answers NO_LICENCE
        if r.status_code == 403 and error_body(r)["code"] == "NO_LICENCE":
            return None
        return r

    r = await eventually(started)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["state"] == "awaiting_verification", body
    return body


async def complete(c: Cluster, user: dict[str, str], handling_id: str, step: str) -> dict[str, Any]:
    r = await c.http.post(
        f"/api/v1/handlings/{handling_id}/verifications/{step}/complete", headers=user
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    (done,) = [s for s in body["steps"] if s["step"] == step]
    assert done["status"] == "passed", body
    assert done["expires_at"], done  # R-ADJ-8: a passed verification expires
    return body


async def submit(c: Cluster, user: dict[str, str], handling_id: str) -> dict[str, Any]:
    r = await c.http.post(f"/api/v1/handlings/{handling_id}/submit", headers=user)
    assert r.status_code == 200, r.text
    decision: dict[str, Any] = r.json()
    return decision


async def handle_online(c: Cluster, user: dict[str, str], vid: str) -> dict[str, Any]:
    """Start, pass every face step in its order, submit: the decision."""
    handling = await start(c, user, vid)
    for step in handling["steps"]:
        await complete(c, user, handling["handling_id"], step["step"])
    return await submit(c, user, handling["handling_id"])


def assert_decision(
    decision: dict[str, Any], c: Cluster, *, vid: str, fine: int, points: int
) -> None:
    """R-ADJ-7: a 16-digit number with the authority prefix, due 15 days after (R-PAY-2)."""
    assert decision["violation_id"] == vid
    assert (decision["fine_fen"], decision["points"]) == (fine, points)
    number = decision["decision_no"]
    assert len(number) == 16 and number.isdigit(), number
    assert number.startswith(c.settings.decision_authority_code), number
    decided = dt.date.fromisoformat(decision["decision_date"])
    assert decided == today_in_shanghai(SystemClock())
    assert dt.date.fromisoformat(decision["due_date"]) == decided + dt.timedelta(days=15)


# -- 张伟: the happy path ----------------------------------------------------------------------------
async def test_zhang_wei_handles_both_eligible_violations_r_adj_1(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """R-ADJ-1, R-ADJ-5, R-ADJ-7: own car, own licence: SBX-ZW-01 (0 points) and SBX-ZW-02
    (3 points, 100 yuan) are allowed with the handler's face only; each submit issues a
    decision, a retried submit answers the same one, the points (3 → 6) reach /me and the
    list and detail show ``handled_unpaid`` with the decision number."""
    c = sandbox
    zhang = await c.login(ZHANG)
    car = str(roster.vehicle("渝A12345").vehicle_id)
    zw01 = await violation_id(c, zhang, roster, "SBX-ZW-01")
    zw02 = await violation_id(c, zhang, roster, "SBX-ZW-02")
    before = points_of(await me(c, zhang))

    decisions: dict[str, dict[str, Any]] = {}
    for vid, fine, points in ((zw01, 20_000, 0), (zw02, 10_000, 3)):
        hint = (await detail(c, zhang, vid))["online_handling"]
        assert (hint["availability"], hint["route"], hint["reasons"]) == ("allowed", "handler", [])
        handling = await start(c, zhang, vid)
        assert [s["step"] for s in handling["steps"]] == ["handler"]
        assert handling["steps"][0]["person_name"] == "张伟"  # the caller's own name, unmasked
        for step in handling["steps"]:
            await complete(c, zhang, handling["handling_id"], step["step"])
        decision = await submit(c, zhang, handling["handling_id"])
        assert_decision(decision, c, vid=vid, fine=fine, points=points)
        # R-ADJ-5: a retried submit answers the first decision, never a second one
        assert await submit(c, zhang, handling["handling_id"]) == decision
        got = await c.http.get(f"/api/v1/handlings/{handling['handling_id']}", headers=zhang)
        assert got.status_code == 200, got.text
        assert got.json()["state"] == "submitted"
        assert got.json()["decision"] == decision
        decisions[vid] = decision
    assert decisions[zw01]["decision_no"] != decisions[zw02]["decision_no"]

    for vid, decision in decisions.items():
        shown = await in_status(c, zhang, vid, "handled_unpaid")
        assert shown["decision_no"] == decision["decision_no"]
        assert shown["online_handling"]["allowed"] is False  # nothing left to handle
    listed = await c.http.get("/api/v1/violations", params={"vehicle_id": car}, headers=zhang)
    assert listed.status_code == 200, listed.text
    statuses = {v["violation_id"]: v["status"] for v in listed.json()["violations"]}
    assert statuses[zw01] == statuses[zw02] == "handled_unpaid"
    await points_reach(c, zhang, before + 3)


async def test_zhang_wei_is_sent_to_a_counter_for_the_one_over_200_yuan_which_a_counter_handles(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """DOMAIN.md, R-ADJ-1: SBX-ZW-03 (500 yuan, general procedure, no decision) is refused
    online with the counter route; a counter handles it in person (the fine limit does not
    apply there) for the driver at the desk, which issues its decision; 张伟 then sees it
    ``handled_unpaid`` and the counter's call is in the audit trail."""
    c = sandbox
    zhang = await c.login(ZHANG)
    zw03 = await violation_id(c, zhang, roster, "SBX-ZW-03")
    hint = (await detail(c, zhang, zw03))["online_handling"]
    assert (hint["availability"], hint["route"]) == ("refused", "counter")
    assert "GENERAL_PROCEDURE_COUNTER_ONLY" in reason_codes(hint)
    refused = await c.http.post(f"/api/v1/violations/{zw03}/handlings", headers=zhang)
    assert refused.status_code == 403, refused.text
    body = error_body(refused)
    assert body["code"] == hint["reason_code"]
    assert reason_codes(body["details"]) == reason_codes(hint)
    assert body["details"]["route"] == "counter"

    # The driver at the desk: a licence no other walk uses, so the counter's points change
    # (R-ADJ-6's "another channel") holds up no other walk.
    driver = new_owner()
    await c.import_records(driver.records())
    clerk = await c.staff("clerk01")

    async def handled() -> httpx.Response | None:
        r = await c.http.post(
            f"/internal/v1/violations/{zw03}/handle",
            json={"licence_no": driver.id_number},
            headers=clerk,
        )
        return None if r.status_code == 404 else r  # adjudication has not heard of the licence

    r = await eventually(handled)
    assert r.status_code == 201, r.text
    counter = r.json()
    assert (counter["route"], counter["state"]) == ("counter", "submitted")
    assert counter["handler_licence_id"] == driver.licence_id
    assert_decision(counter["decision"], c, vid=zw03, fine=50_000, points=6)

    shown = await in_status(c, zhang, zw03, "handled_unpaid")
    assert shown["decision_no"] == counter["decision"]["decision_no"]
    # R-ADJ-5: the clerk's retried call answers the same decision; another licence is refused
    again = await c.http.post(
        f"/internal/v1/violations/{zw03}/handle",
        json={"licence_no": driver.id_number},
        headers=clerk,
    )
    assert again.status_code == 201, again.text
    assert again.json()["decision"] == counter["decision"]
    other = await c.http.post(
        f"/internal/v1/violations/{zw03}/handle",
        json={"licence_no": roster.person(ZHANG).id_number},
        headers=clerk,
    )
    assert other.status_code == 409, other.text
    assert error_body(other)["code"] == "ALREADY_HANDLED"

    supervisor = await c.staff("super01")
    audit = await c.http.get(
        "/internal/v1/audit", params={"subject": f"violation:{zw03}"}, headers=supervisor
    )
    assert audit.status_code == 200, audit.text
    handled_entries = [e for e in audit.json()["entries"] if e["status_code"] == 201]
    assert len(handled_entries) == 2  # the call and its retry
    for entry in handled_entries:
        assert f"licence_no:{driver.id_number}" in entry["subjects"]
        assert f"licence:{driver.licence_id}" in entry["subjects"]


# -- 李娜: the points boundary -------------------------------------------------------------------------
async def test_li_na_may_reach_12_points_but_not_pass_them_r_adj_1(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """R-ADJ-1: 9 + 3 = 12 is allowed (and lands on her licence); 9 + 6 = 15 is refused with
    POINTS_LIMIT_EXCEEDED, before and after the first one."""
    c = sandbox
    li = await c.login(LI)
    ln01 = await violation_id(c, li, roster, "SBX-LN-01")
    ln02 = await violation_id(c, li, roster, "SBX-LN-02")
    assert points_of(await me(c, li)) == 9

    refused = (await detail(c, li, ln02))["online_handling"]
    assert refused["availability"] == "refused"
    assert "POINTS_LIMIT_EXCEEDED" in reason_codes(refused)

    allowed = (await detail(c, li, ln01))["online_handling"]
    assert (allowed["availability"], allowed["route"]) == ("allowed", "handler")
    decision = await handle_online(c, li, ln01)
    assert_decision(decision, c, vid=ln01, fine=20_000, points=3)
    await points_reach(c, li, 12)
    await in_status(c, li, ln01, "handled_unpaid")

    r = await c.http.post(f"/api/v1/violations/{ln02}/handlings", headers=li)
    assert r.status_code == 403, r.text
    assert "POINTS_LIMIT_EXCEEDED" in reason_codes(error_body(r)["details"])
    assert (await detail(c, li, ln02))["status"] == "unhandled"


# -- 王强: an A2 licence --------------------------------------------------------------------------------
async def test_wang_qiang_is_refused_the_point_bearing_one_and_handles_the_0_point_one_r_adj_2(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """R-ADJ-2: an A-class licence may not take points online (counter route) but handles a
    0-point violation; his points stay 0."""
    c = sandbox
    wang = await c.login(WANG)
    wq01 = await violation_id(c, wang, roster, "SBX-WQ-01")
    wq02 = await violation_id(c, wang, roster, "SBX-WQ-02")

    hint = (await detail(c, wang, wq01))["online_handling"]
    assert (hint["availability"], hint["route"]) == ("refused", "counter")
    assert reason_codes(hint) == ["AB_CLASS_POINTS_COUNTER_ONLY"]
    r = await c.http.post(f"/api/v1/violations/{wq01}/handlings", headers=wang)
    assert r.status_code == 403, r.text
    assert error_body(r)["code"] == "AB_CLASS_POINTS_COUNTER_ONLY"

    assert (await detail(c, wang, wq02))["online_handling"]["availability"] == "allowed"
    decision = await handle_online(c, wang, wq02)
    assert_decision(decision, c, vid=wq02, fine=15_000, points=0)
    await in_status(c, wang, wq02, "handled_unpaid")
    assert (await detail(c, wang, wq01))["status"] == "unhandled"
    assert points_of(await me(c, wang)) == 0


# -- 刘洋: another's car, the owner's consent ---------------------------------------------------------------
async def test_liu_yang_takes_the_points_of_zhang_weis_car_after_zhang_weis_face_r_adj_4(
    sandbox: Cluster, roster: SandboxRoster
) -> None:
    """R-ADJ-4, R-Q-1: 刘洋 proves 张伟's car (plate + VIN last 6); the point-bearing violation
    needs 张伟's face first, then his own; the points land on 刘洋's licence, visible in his
    /me, while 张伟's /me shows his car's violation decided and his own points unchanged."""
    c = sandbox
    car = roster.vehicle("渝A12345")
    zhang, liu = await c.login(ZHANG), await c.login(LIU)
    liu_licence = roster.licence_of(roster.person(LIU))
    assert liu_licence is not None
    # a violation of this walk's own on 张伟's car (SBX-ZW-02 is 张伟's own walk's)
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    recorded = await c.record_violation(
        violation_body(
            car.plate_number,
            f"PERSONA-LY-{uuid.uuid4().hex[:8]}",
            fine_fen=10_000,
            occurred_at=occurred.isoformat(),
        )
    )
    assert recorded.status_code == 201, recorded.text
    vid = recorded.json()["violation_id"]
    await detail(c, zhang, vid)
    zhang_before = await me(c, zhang)
    liu_before = points_of(await me(c, liu))

    proof = await c.http.post(
        "/api/v1/violations/lookup/vehicle",
        json={"plate_type": "02", "plate_number": car.plate_number, "vin": car.vin[-6:]},
        headers=liu,
    )
    assert proof.status_code == 200, proof.text
    assert proof.json()["vehicle"]["relation"] == "proven"
    hint = (await detail(c, liu, vid))["online_handling"]
    assert (hint["availability"], hint["route"]) == ("allowed", "owner_then_handler")

    handling = await start(c, liu, vid)
    assert handling["route"] == "owner_then_handler"
    assert [s["step"] for s in handling["steps"]] == ["owner", "handler"]
    assert handling["steps"][0]["person_name"] == "张*"  # the owner, masked (R-Q-4)
    hid = handling["handling_id"]
    early = await c.http.post(
        f"/api/v1/handlings/{hid}/verifications/handler/complete", headers=liu
    )
    assert early.status_code == 409, early.text
    assert error_body(early)["code"] == "HANDLING_OWNER_STEP_FIRST"
    await complete(c, liu, hid, "owner")  # 张伟's face (the sandbox passes it at once)
    await complete(c, liu, hid, "handler")
    decision = await submit(c, liu, hid)
    assert_decision(decision, c, vid=vid, fine=10_000, points=3)

    await points_reach(c, liu, liu_before + 3)
    shown = await in_status(c, zhang, vid, "handled_unpaid")
    assert shown["decision_no"] == decision["decision_no"]
    assert shown["licence_id"] == str(liu_licence.licence_id)

    car_before = vehicle_in(zhang_before, str(car.vehicle_id))

    async def car_decided() -> dict[str, Any] | None:
        view = await me(c, zhang)
        now = vehicle_in(view, str(car.vehicle_id))
        return view if now["unpaid_count"] == car_before["unpaid_count"] + 1 else None

    zhang_after = await eventually(car_decided)
    assert points_of(zhang_after) == points_of(zhang_before)  # not on the owner's licence


# -- another user's handling ------------------------------------------------------------------------------
async def test_every_handling_endpoint_answers_404_for_another_users_handling(
    sandbox: Cluster,
) -> None:
    """A handling is its starter's: 王强 reaching a fresh owner's handling gets exactly the
    answer of an unknown id on every endpoint, and the owner's handling is untouched (it
    still completes and submits)."""
    c = sandbox
    owner = new_owner()
    await c.import_records(owner.records())
    recorded = await c.record_violation(
        violation_body(owner.plate_number, f"PERSONA-404-{uuid.uuid4().hex[:8]}", fine_fen=10_000)
    )
    assert recorded.status_code == 201, recorded.text
    vid = recorded.json()["violation_id"]
    mine = await c.login(owner.alipay_user_id)
    await detail(c, mine, vid)
    handling = await start(c, mine, vid)
    hid = handling["handling_id"]

    stranger = await c.login(WANG)
    unknown = str(uuid.uuid4())
    # R-Q-1: the stranger cannot start on the owner's violation either (same as unknown)
    foreign = await c.http.post(f"/api/v1/violations/{vid}/handlings", headers=stranger)
    missing = await c.http.post(f"/api/v1/violations/{unknown}/handlings", headers=stranger)
    assert foreign.status_code == missing.status_code == 404, foreign.text
    assert error_body(foreign) == error_body(missing)
    for method, path in (
        ("GET", "/api/v1/handlings/{}"),
        ("POST", "/api/v1/handlings/{}/verifications/handler/complete"),
        ("POST", "/api/v1/handlings/{}/verifications/owner/complete"),
        ("POST", "/api/v1/handlings/{}/submit"),
    ):
        foreign = await c.http.request(method, path.format(hid), headers=stranger)
        missing = await c.http.request(method, path.format(unknown), headers=stranger)
        assert foreign.status_code == missing.status_code == 404, (path, foreign.text)
        assert error_body(foreign) == error_body(missing), path

    got = await c.http.get(f"/api/v1/handlings/{hid}", headers=mine)
    assert got.status_code == 200, got.text
    assert got.json()["state"] == "awaiting_verification"
    await complete(c, mine, hid, "handler")
    decision = await submit(c, mine, hid)
    assert_decision(decision, c, vid=vid, fine=10_000, points=3)


async def test_a_user_who_logged_in_before_their_record_arrived_can_handle(
    sandbox: Cluster,
) -> None:
    """R-USR-1 / R-ADJ-1: the token of a login before the registry record reached the read
    model carries no person; the owner is still recognised as the owner (not a stranger
    answered 404) once the record is there, without logging in again."""
    c = sandbox
    owner = new_owner()
    early = await c.login(owner.alipay_user_id)  # nothing is known of this user yet
    await c.import_records(owner.records())
    recorded = await c.record_violation(
        violation_body(owner.plate_number, f"PERSONA-EARLY-{uuid.uuid4().hex[:8]}", fine_fen=10_000)
    )
    assert recorded.status_code == 201, recorded.text
    vid = recorded.json()["violation_id"]
    await detail(c, early, vid)
    handling = await start(c, early, vid)
    await complete(c, early, handling["handling_id"], "handler")
    decision = await submit(c, early, handling["handling_id"])
    assert_decision(decision, c, vid=vid, fine=10_000, points=3)


# -- disputes -----------------------------------------------------------------------------------------------
async def test_a_disputed_violation_is_refused_online_until_cleared_r_adj_9(
    sandbox: Cluster,
) -> None:
    """R-ADJ-9: a clerk marks a violation disputed; the owner's hint and start name the
    counter route; cleared, it is allowed again."""
    c = sandbox
    owner = new_owner()
    await c.import_records(owner.records())
    recorded = await c.record_violation(
        violation_body(owner.plate_number, f"PERSONA-DSP-{uuid.uuid4().hex[:8]}", fine_fen=10_000)
    )
    assert recorded.status_code == 201, recorded.text
    vid = recorded.json()["violation_id"]
    user = await c.login(owner.alipay_user_id)
    assert (await detail(c, user, vid))["online_handling"]["availability"] == "allowed"
    clerk = await c.staff("clerk01")

    r = await c.http.post(
        f"/internal/v1/violations/{vid}/dispute",
        json={"reason": "车主称当日不在现场"},
        headers=clerk,
    )
    assert r.status_code == 200, r.text
    assert r.json()["disputed"] is True

    async def disputed() -> dict[str, Any] | None:
        body = await detail(c, user, vid)
        return body if body["disputed"] else None

    hint = (await eventually(disputed))["online_handling"]
    assert (hint["availability"], hint["route"]) == ("refused", "counter")
    assert "DISPUTED_COUNTER_ONLY" in reason_codes(hint)
    refused = await c.http.post(f"/api/v1/violations/{vid}/handlings", headers=user)
    assert refused.status_code == 403, refused.text
    assert error_body(refused)["code"] == "DISPUTED_COUNTER_ONLY"

    r = await c.http.post(f"/internal/v1/violations/{vid}/undispute", headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["disputed"] is False

    async def cleared() -> dict[str, Any] | None:
        body = await detail(c, user, vid)
        return body if body["online_handling"]["availability"] == "allowed" else None

    await eventually(cleared)


# -- points buying ------------------------------------------------------------------------------------------
async def prove(c: Cluster, user: dict[str, str], owner: Owner) -> None:
    """R-Q-1: the user proves the owner's car (plate + VIN last 6)."""
    r = await c.http.post(
        "/api/v1/violations/lookup/vehicle",
        json={"plate_type": "02", "plate_number": owner.plate_number, "vin": owner.vin[-6:]},
        headers=user,
    )
    assert r.status_code == 200, r.text


async def test_a_fourth_other_persons_vehicle_in_a_cycle_is_refused_and_staff_see_it_r_x_2(
    sandbox: Cluster,
) -> None:
    """R-X-2: one licence takes points for 3 other people's vehicles (each owner consenting
    by face); the 4th is refused with POINTS_BUYING_VEHICLE_LIMIT and the counter route, and
    staff find the alert naming the licence, the vehicle and the refused violation."""
    c = sandbox
    handler, owners = new_owner(), [new_owner() for _ in range(4)]
    await c.import_records([*handler.records(), *(r for o in owners for r in o.records())])
    vids: list[str] = []
    for owner in owners:
        recorded = await c.record_violation(
            violation_body(
                owner.plate_number, f"PERSONA-RX2-{uuid.uuid4().hex[:8]}", fine_fen=10_000
            )
        )
        assert recorded.status_code == 201, recorded.text
        vids.append(recorded.json()["violation_id"])
    user = await c.login(handler.alipay_user_id)
    for owner, vid in zip(owners[:3], vids[:3], strict=True):
        await prove(c, user, owner)
        hint = (await detail(c, user, vid))["online_handling"]
        assert (hint["availability"], hint["route"]) == ("allowed", "owner_then_handler")
        decision = await handle_online(c, user, vid)
        assert decision["points"] == 3

    await prove(c, user, owners[3])
    hint = (await detail(c, user, vids[3]))["online_handling"]
    assert (hint["availability"], hint["route"]) == ("refused", "counter")
    assert "POINTS_BUYING_VEHICLE_LIMIT" in reason_codes(hint)
    refused = await c.http.post(f"/api/v1/violations/{vids[3]}/handlings", headers=user)
    assert refused.status_code == 403, refused.text
    assert "POINTS_BUYING_VEHICLE_LIMIT" in reason_codes(error_body(refused)["details"])

    clerk = await c.staff("clerk01")

    async def alerted() -> dict[str, Any] | None:
        r = await c.http.get(
            "/internal/v1/alerts/points-buying", params={"limit": "100"}, headers=clerk
        )
        assert r.status_code == 200, r.text
        return next((a for a in r.json()["alerts"] if a["licence_id"] == handler.licence_id), None)

    alert = await eventually(alerted)
    assert alert["kind"] == "licence_for_many_vehicles"
    assert (alert["vehicle_id"], alert["violation_id"]) == (owners[3].vehicle_id, vids[3])
    assert alert["count"] == 3
