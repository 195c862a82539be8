"""Follow use cases on in-memory fakes (cosmicpython): the ``FakeStore`` / ``FakeUnitOfWork``
of ``cqfollow.adapters.fake_unit_of_work`` (a refused request provably writes nothing; every
repository call is logged, so two requests' paths can be compared), the in-memory SMS ports
(``cqfollow.adapters.fake_sms``) and a ``FixedClock``. No database, no Redis. Concurrency
(R-FOL-6) is proven on PostgreSQL in ``tests/integration/test_follows.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DomainError
from cqcommon.identifiers import id_check_char, with_vin_check_digit
from cqfollow.adapters.fake_sms import FakeSmsCodes, FakeSmsSender
from cqfollow.adapters.fake_unit_of_work import (
    FakeStore,
    FakeUnitOfWork,
    StoredLicence,
    StoredVehicle,
)
from cqfollow.domain.callers import Caller
from cqfollow.domain.events import FollowEnded, FollowStarted
from cqfollow.domain.follows import (
    Consent,
    EndReason,
    FollowRequest,
    PersonRecord,
    QuotaLimits,
    RequestState,
    RequestView,
    Target,
    year_bounds,
)
from cqfollow.service_layer.config import Deps, FollowConfig
from cqfollow.service_layer.follows import (
    follow_licence,
    list_followers,
    list_follows,
    revoke_follower,
    unfollow_licence,
    unfollow_vehicle,
)
from cqfollow.service_layer.jobs import run_job
from cqfollow.service_layer.requests import (
    approve_request,
    decline_request,
    list_incoming_requests,
    request_vehicle_follow,
    submit_sms_code,
)
from cqfollow.service_layer.sandbox import list_sandbox_sms, seed_follow


def with_id_check_char(first17: str) -> str:
    return first17 + id_check_char(first17)


# 2026-06-15 12:00 in Chongqing
NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)


class World:
    """A store, a clock, the SMS fakes and the use cases' dependencies on them."""

    def __init__(
        self, *, limits: QuotaLimits | None = None, sandbox_mode: bool = True, at: datetime = NOW
    ) -> None:
        self.store = FakeStore()
        self.clock = FixedClock(at)
        self.codes = FakeSmsCodes()
        self.sender = FakeSmsSender()
        self._ids = 0
        self.deps = Deps(
            uows=lambda: FakeUnitOfWork(self.store),
            sms_codes=self.codes,
            sms_sender=self.sender,
            sms_outbox=self.sender,
            clock=self.clock,
            config=FollowConfig(limits=limits or QuotaLimits(), sandbox_mode=sandbox_mode),
            new_id=self.new_id,
        )

    def new_id(self) -> str:
        self._ids += 1
        return f"00000000-0000-4000-8000-{self._ids:012d}"

    # -- registry copy ------------------------------------------------------------------
    def person(
        self, person_id: str, name: str, *, phone: str | None = None, user_id: str | None = None
    ) -> PersonRecord:
        record = PersonRecord(person_id, name, phone, user_id)
        self.store.persons[person_id] = record
        return record

    def vehicle(
        self, vehicle_id: str, plate: str, vin: str, owner: str, plate_type: str = "02"
    ) -> str:
        self.store.vehicles[vehicle_id] = StoredVehicle(plate_type, plate, vin, owner)
        return vehicle_id

    def licence(self, licence_id: str, person_id: str, licence_no: str, file_no: str) -> str:
        self.store.licences[licence_id] = StoredLicence(person_id, licence_no, file_no)
        return licence_id


# -- the cast -------------------------------------------------------------------------------
OWNER_APP = "a0000000-0000-4000-8000-000000000001"  # 赵敏, on the platform
OWNER_SMS = "a0000000-0000-4000-8000-000000000002"  # 陈静, not on the platform
OWNER_MUTE = "a0000000-0000-4000-8000-000000000003"  # 何军, neither platform nor phone
LIU = "a0000000-0000-4000-8000-000000000004"  # 刘洋, the follower
CAR_APP = "b0000000-0000-4000-8000-000000000001"
CAR_SMS = "b0000000-0000-4000-8000-000000000002"
CAR_MUTE = "b0000000-0000-4000-8000-000000000003"
LICENCE_ZM = "c0000000-0000-4000-8000-000000000001"
VIN_APP = with_vin_check_digit("LSVAU2180N2183294")
VIN_SMS = with_vin_check_digit("LFV2A21K5G3041235")
VIN_MUTE = with_vin_check_digit("LGBH52E05FY012347")
#: VIN_APP with a wrong check digit (position 9)
BAD_CHECK_DIGIT = VIN_APP[:8] + ("1" if VIN_APP[8] != "1" else "2") + VIN_APP[9:]
ZM_NO = "500108199009099525"
ZM_FILE = "500100123456"
PHONE_SMS = "13900000005"
LIU_CALLER = Caller(user_id="2088000000000004", person_id=LIU)
ZM_CALLER = Caller(user_id="2088000000000005", person_id=OWNER_APP)
CLERK = Caller(staff_id="clerk01", staff_role="clerk")


def cast(world: World) -> World:
    world.person(OWNER_APP, "赵敏", phone="13800000005", user_id="2088000000000005")
    world.person(OWNER_SMS, "陈静", phone=PHONE_SMS)
    world.person(OWNER_MUTE, "何军")
    world.person(LIU, "刘洋", phone="13800000004", user_id="2088000000000004")
    world.vehicle(CAR_APP, "渝A67890", VIN_APP, OWNER_APP)
    world.vehicle(CAR_SMS, "渝C34567", VIN_SMS, OWNER_SMS)
    world.vehicle(CAR_MUTE, "渝D11111", VIN_MUTE, OWNER_MUTE)
    world.licence(LICENCE_ZM, OWNER_APP, ZM_NO, ZM_FILE)
    return world


@pytest.fixture
def world() -> World:
    return cast(World())


def user(n: int) -> Caller:
    return Caller(user_id=f"20881{n:011d}")


def owned_car(world: World, n: int, *, on_platform: bool = True) -> tuple[str, str, str]:
    """A fresh owner (on the platform or reachable by SMS) and their car: (vehicle id,
    plate, VIN)."""
    owner = f"d0000000-0000-4000-8000-{n:012d}"
    world.person(
        owner,
        f"车主{n}",
        phone=f"139{n:08d}",
        user_id=f"20889{n:011d}" if on_platform else None,
    )
    vehicle_id = f"e0000000-0000-4000-8000-{n:012d}"
    plate = f"渝B{n:05d}"
    vin = with_vin_check_digit(f"LSVAU2180N2{n:06d}")
    world.vehicle(vehicle_id, plate, vin, owner)
    return vehicle_id, plate, vin


def owner_of(world: World, vehicle_id: str) -> Caller:
    person_id = world.store.vehicles[vehicle_id].owner_person_id
    person = world.store.persons[person_id]
    return Caller(user_id=person.alipay_user_id or "", person_id=person_id)


async def ask(
    world: World, caller: Caller, plate: str, vin: str, plate_type: str = "02"
) -> RequestView:
    return await request_vehicle_follow(
        world.deps, caller=caller, plate_type=plate_type, plate_number=plate, vin=vin
    )


async def follow_by_app(world: World, caller: Caller, vehicle_id: str) -> FollowRequest:
    """Ask and have the owner approve; the approved request."""
    v = world.store.vehicles[vehicle_id]
    asked = await ask(world, caller, v.plate_number, v.vin)
    approved = await approve_request(
        world.deps, caller=owner_of(world, vehicle_id), request_id=asked.request.request_id
    )
    return approved.request


async def code_of(awaitable: Awaitable[Any]) -> str:
    with pytest.raises(DomainError) as info:
        await awaitable
    return info.value.code


async def refusal(awaitable: Awaitable[Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        await awaitable
    return info.value


# -- R-FOL-1: proof ---------------------------------------------------------------------------
async def test_r_fol_1_full_vin_or_last_6_identify_the_vehicle(world: World) -> None:
    by_last6 = await ask(world, LIU_CALLER, "渝A67890", VIN_APP[-6:])
    assert by_last6.request.vehicle_id == CAR_APP
    other = await ask(world, user(1), " 渝a·67890 ", VIN_APP.lower())
    assert other.request.vehicle_id == CAR_APP


async def test_r_fol_1_wrong_vin_and_no_such_vehicle_answer_alike_by_the_same_path(
    world: World,
) -> None:
    """R-FOL-1: a wrong VIN is indistinguishable from no such vehicle: same code, same
    details, same repository calls, nothing written."""
    before = world.store.snapshot()
    world.store.calls.clear()
    wrong_vin = await refusal(ask(world, LIU_CALLER, "渝A67890", "000000"))
    wrong_calls = list(world.store.calls)
    world.store.calls.clear()
    no_vehicle = await refusal(ask(world, LIU_CALLER, "渝A00000", VIN_APP[-6:]))
    assert wrong_vin.code == no_vehicle.code == "FOLLOW_VEHICLE_NOT_FOUND"
    assert wrong_vin.details == no_vehicle.details
    assert (wrong_vin.message_zh, wrong_vin.message_en) == (
        no_vehicle.message_zh,
        no_vehicle.message_en,
    )
    assert wrong_calls == world.store.calls == ["registry.vehicles_by_plate"]
    assert world.store.snapshot() == before and world.sender.sent == []


async def test_r_fol_1_only_chongqing_vehicles_can_be_followed(world: World) -> None:
    world.vehicle("b0000000-0000-4000-8000-0000000000c1", "川A67890", VIN_APP, OWNER_APP)
    world.store.calls.clear()
    e = await refusal(ask(world, LIU_CALLER, "川A67890", VIN_APP))
    assert e.code == "FOLLOW_VEHICLE_NOT_FOUND"
    assert world.store.calls == ["registry.vehicles_by_plate"]


async def test_r_fol_1_plate_type_must_fit(world: World) -> None:
    # the plate is right but registered as 02: asking as 01 finds nothing
    assert await code_of(ask(world, LIU_CALLER, "渝A67890", VIN_APP, "01")) == (
        "FOLLOW_VEHICLE_NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("plate_type", "plate", "vin", "code"),
    [
        ("", "渝A67890", "183294", "INVALID_PLATE_TYPE"),
        ("03", "渝A67890", "183294", "INVALID_PLATE_TYPE"),
        ("02", "渝A6789", "183294", "INVALID_PLATE_NUMBER"),
        ("52", "渝A67890", "183294", "INVALID_PLATE_NUMBER"),
        ("02", "渝A67890", "18329", "INVALID_VIN"),
        ("02", "渝A67890", BAD_CHECK_DIGIT, "INVALID_VIN"),
    ],
)
async def test_r_err_1_malformed_proofs_are_refused_with_their_codes(
    world: World, plate_type: str, plate: str, vin: str, code: str
) -> None:
    assert await code_of(ask(world, LIU_CALLER, plate, vin, plate_type)) == code


async def test_r_fol_1_own_vehicle_is_refused(world: World) -> None:
    assert await code_of(ask(world, ZM_CALLER, "渝A67890", VIN_APP)) == "FOLLOW_OWN_VEHICLE"
    # the same user without a linked person is still the owner by user id
    assert await code_of(ask(world, Caller(user_id=ZM_CALLER.user_id), "渝A67890", VIN_APP)) == (
        "FOLLOW_OWN_VEHICLE"
    )


async def test_staff_and_anonymous_callers_cannot_follow(world: World) -> None:
    assert await code_of(ask(world, CLERK, "渝A67890", VIN_APP)) == "FORBIDDEN"
    assert await code_of(ask(world, Caller(), "渝A67890", VIN_APP)) == "FORBIDDEN"


# -- R-FOL-2: consent in the app ---------------------------------------------------------------
async def test_r_fol_2_owner_on_the_platform_approves_in_the_app(world: World) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP[-6:])
    r = asked.request
    assert r.state is RequestState.PENDING_OWNER_APPROVAL and r.consent is Consent.OWNER_APP
    assert r.expires_at == NOW + timedelta(hours=72)
    assert asked.plate_number == "渝A***90"  # masked for the requester until active
    assert world.sender.sent == []
    (incoming,) = await list_incoming_requests(world.deps, caller=ZM_CALLER)
    assert (incoming.request.request_id, incoming.requester_name_masked) == (r.request_id, "刘*")
    assert incoming.plate_number == "渝A67890"
    approved = await approve_request(world.deps, caller=ZM_CALLER, request_id=r.request_id)
    assert approved.request.state is RequestState.APPROVED and approved.request.follow_id
    (started,) = world.store.events(FollowStarted)
    f = started.follow
    assert (f.follow_id, f.consent, f.expires_at) == (
        approved.request.follow_id,
        Consent.OWNER_APP,
        None,
    )
    assert (f.follower_user_id, f.follower_person_id, f.vehicle_id) == (
        LIU_CALLER.user_id,
        LIU,
        CAR_APP,
    )
    assert await list_incoming_requests(world.deps, caller=ZM_CALLER) == []


async def test_r_fol_2_asking_again_while_waiting_for_the_owner_is_already_following(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    again = await refusal(ask(world, LIU_CALLER, "渝A67890", VIN_APP))
    assert (again.code, again.details) == (
        "ALREADY_FOLLOWING",
        {"request_id": asked.request.request_id},
    )
    await approve_request(world.deps, caller=ZM_CALLER, request_id=asked.request.request_id)
    assert await code_of(ask(world, LIU_CALLER, "渝A67890", VIN_APP)) == "ALREADY_FOLLOWING"


async def test_r_fol_2_declined_request_spends_no_chance(world: World) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    declined = await decline_request(
        world.deps, caller=ZM_CALLER, request_id=asked.request.request_id
    )
    assert declined.request.state is RequestState.DECLINED
    assert await code_of(
        approve_request(world.deps, caller=ZM_CALLER, request_id=asked.request.request_id)
    ) == ("FOLLOW_REQUEST_NOT_PENDING")
    overview = await list_follows(world.deps, caller=LIU_CALLER)
    assert overview.quota.chances_left_this_year == 3 and world.store.outbox == []
    # he may ask again
    again = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    assert again.request.request_id != asked.request.request_id


async def test_r_fol_2_only_the_owner_decides_others_get_not_found_like_an_unknown_id(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    rid = asked.request.request_id
    for decide in (approve_request, decline_request):
        for caller in (LIU_CALLER, user(7), Caller(user_id="2088000000000009", person_id=LIU)):
            assert await code_of(decide(world.deps, caller=caller, request_id=rid)) == (
                "FOLLOW_REQUEST_NOT_FOUND"
            )
        for unknown in (str(uuid.uuid4()), "not-a-uuid"):
            assert await code_of(decide(world.deps, caller=ZM_CALLER, request_id=unknown)) == (
                "FOLLOW_REQUEST_NOT_FOUND"
            )
    assert world.store.requests[rid].state is RequestState.PENDING_OWNER_APPROVAL


async def test_r_fol_2_a_request_nobody_acts_on_expires_and_spends_nothing(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    world.clock.advance(timedelta(hours=72))
    assert await list_incoming_requests(world.deps, caller=ZM_CALLER) == []
    assert await code_of(
        approve_request(world.deps, caller=ZM_CALLER, request_id=asked.request.request_id)
    ) == ("FOLLOW_REQUEST_NOT_PENDING")
    batch = await run_job(world.deps, job="expire_follow_requests", checkpoint="", batch_size=10)
    assert (batch.items_done, batch.done) == (1, True)
    assert world.store.requests[asked.request.request_id].state is RequestState.EXPIRED
    again = await run_job(world.deps, job="expire_follow_requests", checkpoint="", batch_size=10)
    assert again.items_done == 0
    assert (await list_follows(world.deps, caller=LIU_CALLER)).quota.chances_left_this_year == 3


async def test_r_job_4_the_runners_as_of_decides_what_has_lapsed(world: World) -> None:
    """RunJob's ``as_of`` (the job runner's --now) is the jobs' "now", not the service clock."""
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    now = world.clock.now()
    early = await run_job(
        world.deps, job="expire_follow_requests", checkpoint="", batch_size=10, as_of=now
    )
    assert early.items_done == 0
    later = now + timedelta(hours=73)
    batch = await run_job(
        world.deps, job="expire_follow_requests", checkpoint="", batch_size=10, as_of=later
    )
    assert batch.items_done == 1
    assert world.store.requests[asked.request.request_id].state is RequestState.EXPIRED


async def test_r_fol_2_a_lapsed_request_does_not_block_asking_again(world: World) -> None:
    first = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    world.clock.advance(timedelta(hours=73))  # the job has not run
    second = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    assert second.request.request_id != first.request.request_id
    assert world.store.requests[first.request.request_id].state is RequestState.EXPIRED


# -- R-FOL-2, R-SMS-1..3: consent by SMS ----------------------------------------------------------
async def test_r_fol_2_owner_off_the_platform_gets_a_code_at_the_phone_on_record(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS[-6:])
    r = asked.request
    assert (r.state, r.consent, r.sms_phone_masked) == (
        RequestState.PENDING_SMS_CODE,
        Consent.SMS,
        "139****0005",
    )
    assert r.sms_resend_at == NOW + timedelta(seconds=60)
    (sent,) = world.sender.sent
    assert (sent.phone, sent.template_code) == (PHONE_SMS, "SMS_000000000")
    assert sent.params == {"code": world.codes.code_for(r.request_id)}
    follow = await submit_sms_code(
        world.deps,
        caller=LIU_CALLER,
        request_id=r.request_id,
        code=world.codes.code_for(r.request_id),
    )
    assert (follow.follow.consent, follow.plate_number) == (Consent.SMS, "渝C34567")
    # R-FOL-5: an SMS-authorised follow lasts a year
    assert follow.follow.expires_at == NOW + timedelta(days=365)
    assert world.store.requests[r.request_id].state is RequestState.APPROVED
    (started,) = world.store.events(FollowStarted)
    assert started.follow.expires_at == NOW + timedelta(days=365)


async def test_full_width_digits_and_spaces_in_the_entered_code_count(world: World) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    code = world.codes.code_for(asked.request.request_id)
    typed = " ".join(chr(ord(c) - ord("0") + ord("０")) for c in code)
    follow = await submit_sms_code(
        world.deps, caller=LIU_CALLER, request_id=asked.request.request_id, code=typed
    )
    assert follow.follow.consent is Consent.SMS


async def test_r_fol_2_no_platform_and_no_phone_means_no_consent_route(world: World) -> None:
    assert await code_of(ask(world, LIU_CALLER, "渝D11111", VIN_MUTE)) == (
        "FOLLOW_NO_CONSENT_ROUTE"
    )
    assert world.store.requests == {} and world.codes.issued == []


async def test_r_fol_2_an_owner_not_yet_in_the_copy_is_answered_like_an_unknown_vehicle(
    world: World,
) -> None:
    """The registry's vehicle event can overtake its owner's person event: until the owner
    arrives the consent route is unknown, so the answer is FOLLOW_VEHICLE_NOT_FOUND (a retry
    finds them), never FOLLOW_NO_CONSENT_ROUTE; nothing is written or sent."""
    owner = world.store.persons.pop(OWNER_SMS)
    assert await code_of(ask(world, LIU_CALLER, "渝C34567", VIN_SMS)) == "FOLLOW_VEHICLE_NOT_FOUND"
    assert world.store.requests == {} and world.codes.issued == []
    world.store.persons[OWNER_SMS] = owner
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    assert asked.request.state.value == "pending_sms_code"


async def test_r_sms_1_asking_again_sends_a_new_code_for_the_same_request_after_60s(
    world: World,
) -> None:
    first = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    too_soon = await refusal(ask(world, LIU_CALLER, "渝C34567", VIN_SMS))
    assert (too_soon.code, too_soon.details) == ("SMS_RESEND_TOO_SOON", {"retry_after_s": 60})
    world.clock.advance(timedelta(seconds=61))
    second = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    assert second.request.request_id == first.request.request_id
    assert second.request.sms_resend_at == world.clock.now() + timedelta(seconds=60)
    assert len(world.sender.sent) == 2 and len(world.store.requests) == 1
    # only the newest code works
    old = world.sender.sent[0].params["code"]
    new = world.sender.sent[1].params["code"]
    if old != new:
        wrong = await refusal(
            submit_sms_code(
                world.deps, caller=LIU_CALLER, request_id=first.request.request_id, code=old
            )
        )
        assert wrong.code == "SMS_CODE_WRONG"
    await submit_sms_code(
        world.deps, caller=LIU_CALLER, request_id=first.request.request_id, code=new
    )


async def test_r_sms_1_another_requester_within_the_cooldown_is_told_when_to_retry(
    world: World,
) -> None:
    await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    world.clock.advance(timedelta(seconds=20))
    other = await refusal(ask(world, user(2), "渝C34567", VIN_SMS))
    assert (other.code, other.details) == ("SMS_RESEND_TOO_SOON", {"retry_after_s": 40})
    assert len(world.store.requests) == 1  # nothing left behind by the refused one


async def test_r_sms_2_a_locked_phone_is_refused_with_the_seconds_to_midnight(
    world: World,
) -> None:
    world.codes.locked_day[PHONE_SMS] = NOW.astimezone(SHANGHAI).date().isoformat()
    locked = await refusal(ask(world, LIU_CALLER, "渝C34567", VIN_SMS))
    assert locked.code == "SMS_PHONE_LOCKED"
    assert locked.details == {"retry_after_s": 12 * 3600}  # 12:00 → midnight Asia/Shanghai
    assert world.store.requests == {}


async def test_r_sms_3_a_failed_send_leaves_nothing_behind(world: World) -> None:
    world.sender.fail_next = 1
    assert await code_of(ask(world, LIU_CALLER, "渝C34567", VIN_SMS)) == "SMS_UNAVAILABLE"
    assert world.store.requests == {} and world.codes.codes == {}
    assert world.codes.released == [world.codes.issued[0][0]]
    # the cooldown was lifted: asking again at once works
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    assert asked.request.state is RequestState.PENDING_SMS_CODE


async def test_r_sms_1_wrong_codes_count_down_and_the_fifth_voids_the_code(
    world: World,
) -> None:
    """R-SMS-1: 5 wrong entries void the code; the request is cancelled, so a 6th entry,
    even of the right code, fails."""
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid = asked.request.request_id
    right = world.codes.code_for(rid)
    wrong = "000000" if right != "000000" else "111111"
    for left in (4, 3, 2, 1):
        e = await refusal(
            submit_sms_code(world.deps, caller=LIU_CALLER, request_id=rid, code=wrong)
        )
        assert (e.code, e.details) == ("SMS_CODE_WRONG", {"attempts_left": left})
    void = await refusal(submit_sms_code(world.deps, caller=LIU_CALLER, request_id=rid, code=wrong))
    assert (void.code, void.details) == ("SMS_CODE_EXPIRED", {"reason": "void"})
    assert world.store.requests[rid].state is RequestState.CANCELLED
    assert await code_of(
        submit_sms_code(world.deps, caller=LIU_CALLER, request_id=rid, code=right)
    ) == ("FOLLOW_REQUEST_NOT_PENDING")
    assert world.store.follows == {}
    # a cancelled request spends nothing and does not block a new one
    world.clock.advance(timedelta(seconds=61))
    assert (await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)).request.request_id != rid


async def test_r_sms_1_an_expired_code_is_refused_and_a_new_one_can_be_asked_for(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid = asked.request.request_id
    code = world.codes.code_for(rid)
    world.codes.now = NOW + timedelta(minutes=5)  # the code's life is over
    e = await refusal(submit_sms_code(world.deps, caller=LIU_CALLER, request_id=rid, code=code))
    assert (e.code, e.details) == ("SMS_CODE_EXPIRED", {"reason": "expired"})
    assert world.store.requests[rid].state is RequestState.PENDING_SMS_CODE


async def test_sms_code_for_another_users_request_is_not_found_like_an_unknown_id(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid = asked.request.request_id
    code = world.codes.code_for(rid)
    for caller, request_id in (
        (user(3), rid),
        (LIU_CALLER, str(uuid.uuid4())),
        (LIU_CALLER, "garbage"),
    ):
        world.store.calls.clear()
        assert await code_of(
            submit_sms_code(world.deps, caller=caller, request_id=request_id, code=code)
        ) == ("FOLLOW_REQUEST_NOT_FOUND")
        assert world.store.calls == ["requests.get_for_requester"]
    assert world.codes.code_for(rid) == code  # no attempt was counted


async def test_sms_code_for_an_owner_approval_request_is_not_pending(world: World) -> None:
    asked = await ask(world, LIU_CALLER, "渝A67890", VIN_APP)
    assert await code_of(
        submit_sms_code(
            world.deps, caller=LIU_CALLER, request_id=asked.request.request_id, code="123456"
        )
    ) == ("FOLLOW_REQUEST_NOT_PENDING")


# -- R-FOL-3, R-FOL-4: quotas -----------------------------------------------------------------
async def test_r_fol_3_two_active_follows_at_once_the_third_approval_waits(world: World) -> None:
    cars = [owned_car(world, n) for n in range(1, 4)]
    for vehicle_id, _, _ in cars[:2]:
        await follow_by_app(world, LIU_CALLER, vehicle_id)
    _, plate, vin = cars[2]
    # the request itself is refused at once (a hopeless request)
    e = await refusal(ask(world, LIU_CALLER, plate, vin))
    assert (e.code, e.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": "active_vehicle_follows", "limit": 2, "used": 2},
    )
    assert "2" in e.message_zh and "at once" in e.message_en


async def test_r_fol_3_an_owner_approval_over_quota_is_refused_and_the_request_waits(
    world: World,
) -> None:
    cars = [owned_car(world, n) for n in range(1, 4)]
    asked = [await ask(world, LIU_CALLER, plate, vin) for _, plate, vin in cars]
    for (vehicle_id, _, _), a in zip(cars[:2], asked[:2], strict=True):
        await approve_request(
            world.deps, caller=owner_of(world, vehicle_id), request_id=a.request.request_id
        )
    third_owner = owner_of(world, cars[2][0])
    before = world.store.snapshot()
    e = await refusal(
        approve_request(world.deps, caller=third_owner, request_id=asked[2].request.request_id)
    )
    assert (e.code, e.details["quota"]) == ("FOLLOW_QUOTA_EXCEEDED", "active_vehicle_follows")
    assert world.store.snapshot() == before  # the request still waits, nothing written
    # a slot frees up: the owner approves later
    first_follow = world.store.requests[asked[0].request.request_id].follow_id
    assert first_follow is not None
    await unfollow_vehicle(world.deps, caller=LIU_CALLER, follow_id=first_follow)
    done = await approve_request(
        world.deps, caller=third_owner, request_id=asked[2].request.request_id
    )
    assert done.request.state is RequestState.APPROVED


async def test_r_fol_3_three_chances_a_year_unfollowing_gives_none_back_new_year_does(
    world: World,
) -> None:
    cars = [owned_car(world, n) for n in range(1, 6)]
    for vehicle_id, _, _ in cars[:3]:
        approved = await follow_by_app(world, LIU_CALLER, vehicle_id)
        assert approved.follow_id is not None
        await unfollow_vehicle(world.deps, caller=LIU_CALLER, follow_id=approved.follow_id)
    overview = await list_follows(world.deps, caller=LIU_CALLER)
    assert (overview.quota.active, overview.quota.chances_left_this_year) == (0, 0)
    e = await refusal(ask(world, LIU_CALLER, cars[3][1], cars[3][2]))
    assert (e.code, e.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": "chances_this_year", "limit": 3, "used": 3},
    )
    # 2027-01-01 00:00:01 in Chongqing is still 2026-12-31 in UTC: a new year all the same
    world.clock.at = datetime(2027, 1, 1, 0, 0, 1, tzinfo=SHANGHAI)
    assert (await list_follows(world.deps, caller=LIU_CALLER)).quota.chances_left_this_year == 3
    await follow_by_app(world, LIU_CALLER, cars[3][0])


async def test_r_fol_3_the_year_of_a_chance_is_the_asia_shanghai_year() -> None:
    # 2025-12-31 17:00 UTC is 2026-01-01 01:00 in Chongqing
    start, end = year_bounds(datetime(2025, 12, 31, 17, 0, tzinfo=UTC))
    assert start == datetime(2026, 1, 1, tzinfo=SHANGHAI)
    assert end == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    start, _ = year_bounds(datetime(2025, 12, 31, 15, 59, tzinfo=UTC))
    assert start.year == 2025


async def test_r_fol_4_a_vehicle_has_at_most_three_followers(world: World) -> None:
    vehicle_id, plate, vin = owned_car(world, 9)
    for n in range(3):
        await follow_by_app(world, user(n), vehicle_id)
    e = await refusal(ask(world, user(4), plate, vin))
    assert (e.code, e.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": "vehicle_followers", "limit": 3, "used": 3},
    )
    assert "3" in e.message_zh


async def test_r_fol_4_approval_over_the_vehicle_limit_is_refused(world: World) -> None:
    vehicle_id, plate, vin = owned_car(world, 9)
    asked = [await ask(world, user(n), plate, vin) for n in range(4)]
    owner = owner_of(world, vehicle_id)
    for a in asked[:3]:
        await approve_request(world.deps, caller=owner, request_id=a.request.request_id)
    e = await refusal(
        approve_request(world.deps, caller=owner, request_id=asked[3].request.request_id)
    )
    assert e.details["quota"] == "vehicle_followers"
    assert (await list_followers(world.deps, caller=owner)).__len__() == 3


async def test_r_fol_6_a_quota_refusal_at_sms_confirmation_cancels_and_spends_nothing(
    world: World,
) -> None:
    """The pre-check let the request through; the vehicle filled up before the code came
    back: the confirmation is refused, the request cancelled, no chance spent."""
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    for n in range(3):  # three others follow 陈静's car meanwhile (seeded, quotas respected)
        other = f"f0000000-0000-4000-8000-{n:012d}"
        world.person(other, f"路人{n}", user_id=f"20887{n:011d}")
        await seed_follow(world.deps, caller=CLERK, follower_person_id=other, vehicle_id=CAR_SMS)
    rid = asked.request.request_id
    e = await refusal(
        submit_sms_code(
            world.deps, caller=LIU_CALLER, request_id=rid, code=world.codes.code_for(rid)
        )
    )
    assert (e.code, e.details["quota"]) == ("FOLLOW_QUOTA_EXCEEDED", "vehicle_followers")
    assert world.store.requests[rid].state is RequestState.CANCELLED
    overview = await list_follows(world.deps, caller=LIU_CALLER)
    assert (overview.quota.chances_left_this_year, overview.pending) == (3, [])


async def test_list_follows_shows_use_what_is_left_and_waiting_requests(world: World) -> None:
    await follow_by_app(world, LIU_CALLER, CAR_APP)
    waiting = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    await follow_licence(
        world.deps, caller=LIU_CALLER, name="赵敏", licence_no=ZM_NO, file_no=ZM_FILE
    )
    o = await list_follows(world.deps, caller=LIU_CALLER)
    q = o.quota
    assert (q.active, q.max_active, q.chances_left_this_year, q.chances_per_year) == (1, 2, 2, 3)
    assert (q.licence_follows, q.max_licence_follows) == (1, 5)
    assert [(v.follow.target, v.plate_number, v.licence_holder_name_masked) for v in o.follows] == [
        (Target.VEHICLE, "渝A67890", ""),
        (Target.LICENCE, "", "赵*"),
    ]
    (pending,) = o.pending
    assert pending.request.request_id == waiting.request.request_id
    assert pending.plate_number == "渝C***67"


# -- R-FOL-7, R-X-3: unfollow, revoke, followers ----------------------------------------------
async def test_r_x_3_owners_see_who_follows_and_since_when_names_masked(world: World) -> None:
    await follow_by_app(world, LIU_CALLER, CAR_APP)
    (f,) = await list_followers(world.deps, caller=ZM_CALLER)
    assert (f.follower_name_masked, f.plate_number, f.follow.started_at) == ("刘*", "渝A67890", NOW)
    assert await list_followers(world.deps, caller=LIU_CALLER) == []
    assert await list_followers(world.deps, caller=user(5)) == []


async def test_r_fol_7_unfollow_and_revoke_end_the_follow_and_publish_follow_ended(
    world: World,
) -> None:
    first = await follow_by_app(world, LIU_CALLER, CAR_APP)
    assert first.follow_id is not None
    ended = await unfollow_vehicle(world.deps, caller=LIU_CALLER, follow_id=first.follow_id)
    assert (ended.end_reason, ended.follower_user_id, ended.vehicle_id) == (
        EndReason.UNFOLLOWED,
        LIU_CALLER.user_id,
        CAR_APP,
    )
    second = await follow_by_app(world, LIU_CALLER, CAR_APP)
    assert second.follow_id is not None
    revoked = await revoke_follower(world.deps, caller=ZM_CALLER, follow_id=second.follow_id)
    assert revoked.end_reason is EndReason.REVOKED
    assert [(e.follow.follow_id, e.follow.end_reason) for e in world.store.events(FollowEnded)] == [
        (first.follow_id, EndReason.UNFOLLOWED),
        (second.follow_id, EndReason.REVOKED),
    ]
    # ended once: a second end of either kind is not found
    assert await code_of(
        unfollow_vehicle(world.deps, caller=LIU_CALLER, follow_id=second.follow_id)
    ) == ("FOLLOW_NOT_FOUND")
    assert await code_of(
        revoke_follower(world.deps, caller=ZM_CALLER, follow_id=first.follow_id)
    ) == ("FOLLOW_NOT_FOUND")
    assert len(world.store.events(FollowEnded)) == 2


async def test_r_fol_7_another_users_follow_is_not_found_like_an_unknown_one(
    world: World,
) -> None:
    approved = await follow_by_app(world, LIU_CALLER, CAR_APP)
    fid = approved.follow_id
    assert fid is not None
    licence = await follow_licence(
        world.deps, caller=LIU_CALLER, name="赵敏", licence_no=ZM_NO, file_no=ZM_FILE
    )
    lid = licence.follow.follow_id
    attempts: list[tuple[Any, Caller, str]] = [
        (unfollow_vehicle, user(6), fid),  # someone else's
        (unfollow_vehicle, LIU_CALLER, lid),  # a licence follow is not a vehicle follow
        (unfollow_licence, user(6), lid),
        (unfollow_licence, LIU_CALLER, fid),
        (revoke_follower, LIU_CALLER, fid),  # the follower is not the owner
        (revoke_follower, Caller(user_id="2088000000000099"), fid),
    ]
    for end, caller, follow_id in attempts:
        assert await code_of(end(world.deps, caller=caller, follow_id=follow_id)) == (
            "FOLLOW_NOT_FOUND"
        )
        for unknown in (str(uuid.uuid4()), "nope"):
            assert await code_of(end(world.deps, caller=caller, follow_id=unknown)) == (
                "FOLLOW_NOT_FOUND"
            )
    assert world.store.events(FollowEnded) == []


# -- R-FOL-8: licences ----------------------------------------------------------------------------
async def test_r_fol_8_licence_follow_needs_all_three_facts_and_no_consent(world: World) -> None:
    view = await follow_licence(
        world.deps, caller=LIU_CALLER, name=" 赵 敏 ", licence_no=ZM_NO, file_no=ZM_FILE
    )
    assert (view.follow.consent, view.follow.licence_id, view.licence_holder_name_masked) == (
        Consent.NONE,
        LICENCE_ZM,
        "赵*",
    )
    (started,) = world.store.events(FollowStarted)
    assert started.follow.target is Target.LICENCE
    assert await code_of(
        follow_licence(
            world.deps, caller=LIU_CALLER, name="赵敏", licence_no=ZM_NO, file_no=ZM_FILE
        )
    ) == ("ALREADY_FOLLOWING")
    ended = await unfollow_licence(world.deps, caller=LIU_CALLER, follow_id=view.follow.follow_id)
    assert ended.end_reason is EndReason.UNFOLLOWED


@pytest.mark.parametrize(
    ("name", "licence_no", "file_no"),
    [
        ("赵明", ZM_NO, ZM_FILE),  # wrong name
        ("赵敏", ZM_NO, "500100123457"),  # wrong file number
        ("赵敏", "500103198803159111", ZM_FILE),  # another (unknown) licence number
    ],
)
async def test_r_fol_8_any_mismatch_answers_like_no_such_licence(
    world: World, name: str, licence_no: str, file_no: str
) -> None:
    world.store.calls.clear()
    e = await refusal(
        follow_licence(
            world.deps, caller=LIU_CALLER, name=name, licence_no=licence_no, file_no=file_no
        )
    )
    assert (e.code, e.details) == ("FOLLOW_LICENCE_NOT_FOUND", {})
    assert world.store.calls == ["registry.licence_by_number"]


async def test_r_fol_8_own_licence_and_malformed_facts_are_refused(world: World) -> None:
    assert await code_of(
        follow_licence(world.deps, caller=ZM_CALLER, name="赵敏", licence_no=ZM_NO, file_no=ZM_FILE)
    ) == ("FOLLOW_OWN_LICENCE")
    assert await code_of(
        follow_licence(
            world.deps, caller=LIU_CALLER, name="赵敏", licence_no="123", file_no=ZM_FILE
        )
    ) == ("INVALID_ID_NUMBER")
    assert await code_of(
        follow_licence(world.deps, caller=LIU_CALLER, name="赵敏", licence_no=ZM_NO, file_no="12")
    ) == ("INVALID_FILE_NO")
    assert await code_of(
        follow_licence(world.deps, caller=LIU_CALLER, name="  ", licence_no=ZM_NO, file_no=ZM_FILE)
    ) == ("VALIDATION_FAILED")


async def test_r_fol_8_at_most_five_licences_at_once(world: World) -> None:
    for n in range(6):
        person = f"c1000000-0000-4000-8000-{n:012d}"
        number = with_id_check_char(f"50010319900101{n:03d}")
        world.person(person, f"持证人{n}")
        world.licence(f"c2000000-0000-4000-8000-{n:012d}", person, number, f"5001000000{n:02d}")
    licences = sorted(world.store.licences.items())
    for _, lic in licences[1:6]:
        await follow_licence(
            world.deps,
            caller=LIU_CALLER,
            name=world.store.persons[lic.person_id].name,
            licence_no=lic.licence_no,
            file_no=lic.file_no,
        )
    _, last = licences[6]
    e = await refusal(
        follow_licence(
            world.deps,
            caller=LIU_CALLER,
            name=world.store.persons[last.person_id].name,
            licence_no=last.licence_no,
            file_no=last.file_no,
        )
    )
    assert (e.code, e.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": "licence_follows", "limit": 5, "used": 5},
    )
    # licence follows spend no vehicle chance
    assert (await list_follows(world.deps, caller=LIU_CALLER)).quota.chances_left_this_year == 3


# -- R-FOL-5: expiry ------------------------------------------------------------------------------
async def test_r_fol_5_the_job_ends_sms_follows_after_a_year_and_is_idempotent(
    world: World,
) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid = asked.request.request_id
    follow = await submit_sms_code(
        world.deps, caller=LIU_CALLER, request_id=rid, code=world.codes.code_for(rid)
    )
    app = await follow_by_app(world, LIU_CALLER, CAR_APP)  # owner-approved: never expires
    world.clock.advance(timedelta(days=365))
    # lapsed before the job runs: no longer active, no longer counted
    assert [
        v.follow.follow_id for v in (await list_follows(world.deps, caller=LIU_CALLER)).follows
    ] == [app.follow_id]
    batch = await run_job(world.deps, job="expire_sms_follows", checkpoint="", batch_size=10)
    assert (batch.items_done, batch.done) == (1, True)
    (ended,) = world.store.events(FollowEnded)
    assert (ended.follow.follow_id, ended.follow.end_reason) == (
        follow.follow.follow_id,
        EndReason.EXPIRED,
    )
    again = await run_job(world.deps, job="expire_sms_follows", checkpoint="", batch_size=10)
    assert again.items_done == 0 and len(world.store.events(FollowEnded)) == 1


async def test_r_fol_5_the_job_pages_with_a_keyset_checkpoint(world: World) -> None:
    vehicles = [owned_car(world, n, on_platform=False) for n in range(1, 6)]
    for n, (_, plate, vin) in enumerate(vehicles):
        asker = user(100 + n)
        asked = await ask(world, asker, plate, vin)
        rid = asked.request.request_id
        await submit_sms_code(
            world.deps, caller=asker, request_id=rid, code=world.codes.code_for(rid)
        )
        world.clock.advance(timedelta(minutes=1))
    world.clock.advance(timedelta(days=366))
    checkpoint, total, rounds = "", 0, 0
    while True:
        batch = await run_job(
            world.deps, job="expire_sms_follows", checkpoint=checkpoint, batch_size=2
        )
        checkpoint, total, rounds = batch.checkpoint, total + batch.items_done, rounds + 1
        if batch.done:
            break
    assert (total, rounds) == (5, 3)
    assert all(f.end_reason is EndReason.EXPIRED for f in world.store.follows.values())


async def test_a_lapsed_sms_follow_can_be_asked_for_again(world: World) -> None:
    asked = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid = asked.request.request_id
    await submit_sms_code(
        world.deps, caller=LIU_CALLER, request_id=rid, code=world.codes.code_for(rid)
    )
    world.clock.at = datetime(2027, 6, 16, 4, 0, tzinfo=UTC)  # a year on, the job has not run
    again = await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    rid2 = again.request.request_id
    await submit_sms_code(
        world.deps, caller=LIU_CALLER, request_id=rid2, code=world.codes.code_for(rid2)
    )
    ends = world.store.events(FollowEnded)
    assert [e.follow.end_reason for e in ends] == [EndReason.EXPIRED]
    assert len(world.store.events(FollowStarted)) == 2


async def test_jobs_refuse_unknown_names_and_bad_checkpoints(world: World) -> None:
    e = await refusal(run_job(world.deps, job="nope", checkpoint="", batch_size=1))
    assert (e.code, e.details) == (
        "UNKNOWN_JOB",
        {"jobs": ["expire_sms_follows", "expire_follow_requests"]},
    )
    assert await code_of(
        run_job(world.deps, job="expire_sms_follows", checkpoint="x|y", batch_size=1)
    ) == ("VALIDATION_FAILED")


# -- sandbox ------------------------------------------------------------------------------------
async def test_r_sms_3_staff_read_the_sandbox_outbox_in_sandbox_mode_only(world: World) -> None:
    await ask(world, LIU_CALLER, "渝C34567", VIN_SMS)
    (message,) = await list_sandbox_sms(world.deps, caller=CLERK, phone=PHONE_SMS, limit=0)
    assert message.params["code"] == world.sender.sent[0].params["code"]
    assert await list_sandbox_sms(world.deps, caller=CLERK, phone="13000000000", limit=5) == []
    assert await code_of(list_sandbox_sms(world.deps, caller=LIU_CALLER, phone="", limit=5)) == (
        "SANDBOX_ONLY"
    )
    production = cast(World(sandbox_mode=False))
    assert await code_of(list_sandbox_sms(production.deps, caller=CLERK, phone="", limit=5)) == (
        "SANDBOX_ONLY"
    )
    assert await code_of(
        seed_follow(production.deps, caller=CLERK, follower_person_id=LIU, vehicle_id=CAR_APP)
    ) == ("SANDBOX_ONLY")


async def test_seed_follow_is_idempotent_and_respects_the_quotas(world: World) -> None:
    first = await seed_follow(world.deps, caller=CLERK, follower_person_id=LIU, vehicle_id=CAR_APP)
    again = await seed_follow(world.deps, caller=CLERK, follower_person_id=LIU, vehicle_id=CAR_APP)
    assert first.follow.follow_id == again.follow.follow_id
    assert first.follow.follower_key == "user:2088000000000004"  # counts as his own follow
    assert len(world.store.events(FollowStarted)) == 1
    assert await code_of(
        seed_follow(world.deps, caller=CLERK, follower_person_id=OWNER_APP, vehicle_id=CAR_APP)
    ) == ("FOLLOW_OWN_VEHICLE")
    assert await code_of(
        seed_follow(world.deps, caller=CLERK, follower_person_id=LIU, vehicle_id=str(uuid.uuid4()))
    ) == ("FOLLOW_VEHICLE_NOT_FOUND")
    assert await code_of(
        seed_follow(
            world.deps, caller=CLERK, follower_person_id=str(uuid.uuid4()), vehicle_id=CAR_APP
        )
    ) == ("NOT_FOUND")
    # a person without a user is keyed by person
    seeded = await seed_follow(
        world.deps, caller=CLERK, follower_person_id=OWNER_MUTE, vehicle_id=CAR_APP
    )
    assert seeded.follow.follower_key == f"person:{OWNER_MUTE}"
    assert seeded.follow.follower_user_id is None
