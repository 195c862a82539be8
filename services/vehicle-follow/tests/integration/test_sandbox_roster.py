"""The SANDBOX.md follow walk on a whole cluster of its own (every real service, the relay
and the consumers), with the roster loaded by the sandbox loader:

- the loader seeds the roster's follows (孙磊, 周婷, 吴昊 follow 渝A99999) once the follow
  service's registry consumer has the vehicle and the people, and a second load changes
  nothing;
- 刘洋 is refused 渝A99999 as full (R-FOL-4), follows 赵敏's car by her approval in the app
  and 陈静's car by the SMS code read from the sandbox outbox (R-FOL-2, R-SMS-3), spends his
  third chance after an unfollow and is refused a fourth (R-FOL-3);
- the events reach the query service: 刘洋 reads 赵敏's car's violations while he follows
  it and gets 404 at once after the unfollow is published and applied (FollowStarted /
  FollowEnded through Kafka).

An isolated cluster, because the walk changes the roster's follows (the session's roster
is shared with other modules).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from cqcommon.clock import SystemClock, today_in_shanghai
from cqcommon.errors import DomainError
from cqcommon.grpc_client import call, make_channel
from cqcommon.settings import Settings
from cqdev.stack import Stack
from cqdev.testing import Cluster, eventually, isolated_cluster
from cqregistry.domain.roster import SandboxRoster, sandbox_roster
from cqregistry.entrypoints import loader
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import follow_pb2 as pb
from cqtraffic.follow.v1 import follow_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from cqtraffic.follow.v1.follow_pb2_grpc import FollowServiceAsyncStub

pytestmark = pytest.mark.integration

STAFF = common.Caller(staff_id="clerk01", staff_role="clerk")


@pytest.fixture(scope="module")
def roster() -> SandboxRoster:
    return sandbox_roster(today_in_shanghai(SystemClock()))


@pytest.fixture(scope="module")
async def sandbox(stack: Stack, test_settings: Settings) -> AsyncIterator[Cluster]:
    settings = test_settings.model_copy(update={"sandbox_mode": True, "sms_provider": "recording"})
    async with isolated_cluster(stack, settings, label="follow") as cluster:
        yield cluster


@pytest.fixture(scope="module")
async def follow(sandbox: Cluster) -> AsyncIterator[FollowServiceAsyncStub]:
    channel = make_channel(sandbox.settings.follow_service_addr)
    try:
        yield pb_grpc.FollowServiceStub(channel)
    finally:
        await channel.close(None)


def caller(roster: SandboxRoster, alipay_user_id: str) -> common.Caller:
    person = roster.person(alipay_user_id)
    return common.Caller(user_id=alipay_user_id, person_id=str(person.person_id))


async def ask(
    stub: FollowServiceAsyncStub, who: common.Caller, roster: SandboxRoster, plate: str
) -> pb.FollowRequest:
    vehicle = roster.vehicle(plate)
    return await call(
        stub.RequestVehicleFollow,
        pb.RequestVehicleFollowRequest(
            caller=who,
            plate_type=common.PLATE_TYPE_SMALL_CAR,
            plate_number=plate,
            vin=vehicle.vin[-6:],
        ),
        timeout_s=30,
    )


async def refused(awaitable: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        await awaitable
    return info.value


async def test_the_sandbox_follow_walk(
    sandbox: Cluster, follow: FollowServiceAsyncStub, roster: SandboxRoster
) -> None:
    today = today_in_shanghai(SystemClock())
    summary = await loader.load_sandbox(sandbox.settings, today=today)
    assert summary.follows == 3, summary.notes
    again = await loader.load_sandbox(sandbox.settings, today=today)
    assert again.follows == 3 and not [n for n in again.notes if "follow" in n]

    liu = caller(roster, "2088000000000004")
    zhao = caller(roster, "2088000000000005")
    zhang = caller(roster, "2088000000000001")
    full = await refused(ask(follow, liu, roster, "渝A99999"))
    assert (full.code, full.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": "vehicle_followers", "limit": 3, "used": 3},
    )

    # 赵敏 is on the platform: she approves in the app
    asked = await ask(follow, liu, roster, "渝A67890")
    assert asked.state == "pending_owner_approval"
    incoming = await call(
        follow.ListIncomingRequests, pb.ListIncomingRequestsRequest(caller=zhao), timeout_s=10
    )
    assert [(r.request_id, r.requester_name_masked) for r in incoming.requests] == [
        (asked.request_id, "刘*")
    ]
    approved = await call(
        follow.ApproveRequest,
        pb.DecideRequestRequest(caller=zhao, request_id=asked.request_id),
        timeout_s=10,
    )

    # the read model grants 刘洋 赵敏's car once FollowStarted is applied
    headers = await sandbox.login("2088000000000004")
    car = str(roster.vehicle("渝A67890").vehicle_id)

    async def status() -> int:
        r = await sandbox.http.get(
            "/api/v1/violations", params={"vehicle_id": car}, headers=headers
        )
        return r.status_code

    async def granted() -> bool | None:
        return True if await status() == 200 else None

    assert await eventually(granted)

    # 陈静 is not: the code goes to her phone, the sandbox outbox shows it
    by_sms = await ask(follow, liu, roster, "渝C34567")
    assert (by_sms.state, by_sms.sms_phone_masked) == ("pending_sms_code", "139****0005")
    outbox = await call(
        follow.ListSandboxSms,
        pb.ListSandboxSmsRequest(caller=STAFF, phone="13900000005", limit=1),
        timeout_s=10,
    )
    (message,) = outbox.messages
    confirmed = await call(
        follow.SubmitSmsCode,
        pb.SubmitSmsCodeRequest(
            caller=liu, request_id=by_sms.request_id, code=message.params["code"]
        ),
        timeout_s=10,
    )
    assert confirmed.consent == "sms" and confirmed.expires_at.seconds > 0

    # two at once: the unfollow frees a slot but not the chance; the third chance is spent
    ended = await call(
        follow.UnfollowVehicle,
        pb.EndFollowRequest(caller=liu, follow_id=approved.follow_id),
        timeout_s=10,
    )
    assert ended.follower_user_id == "2088000000000004"

    async def revoked() -> bool | None:
        return True if await status() == 404 else None

    assert await eventually(revoked)  # FollowEnded reached the read model
    third = await ask(follow, liu, roster, "渝A12345")
    await call(
        follow.ApproveRequest,
        pb.DecideRequestRequest(caller=zhang, request_id=third.request_id),
        timeout_s=10,
    )
    listed = await call(follow.ListFollows, pb.ListFollowsRequest(caller=liu), timeout_s=10)
    assert (listed.active, listed.chances_left_this_year) == (2, 0)
    await call(
        follow.UnfollowVehicle,
        pb.EndFollowRequest(caller=liu, follow_id=confirmed.follow_id),
        timeout_s=10,
    )
    fourth = await refused(ask(follow, liu, roster, "渝A67890"))
    assert (fourth.code, fourth.details["quota"]) == ("FOLLOW_QUOTA_EXCEEDED", "chances_this_year")

    # 渝A99999's owner sees its three seeded followers
    owner_id = roster.vehicle("渝A99999").owner_person_id
    followers = await call(
        follow.ListFollowers,
        pb.ListFollowersRequest(caller=common.Caller(user_id="x", person_id=str(owner_id))),
        timeout_s=10,
    )
    assert sorted(f.follower_name_masked for f in followers.followers) == ["吴*", "周*", "孙*"]
