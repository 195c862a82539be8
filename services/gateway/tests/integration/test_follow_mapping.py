"""The follow endpoints of the gateway against real PostgreSQL (staff accounts, audit log)
with ``FakeServices`` (conftest) scripted as the FollowService and the QueryService: the
HTTP ↔ gRPC mapping over a real gRPC hop (error details such as ``retry_after_s`` and
``quota`` cross in the ``error-bin`` trailer), the read-your-writes wait asking the query
service as the follower, and the audit of the sandbox SMS outbox. The follow rules
themselves are the follow service's tests; the flows through the real services are
``tests/integration/test_follow_flows.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from cqcommon.errors import FOLLOW_QUOTA_EXCEEDED, SMS_CODE_WRONG, SMS_RESEND_TOO_SOON, DomainError
from cqdev.testing import error_body, traced
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.query.v1 import query_pb2 as q

pytestmark = pytest.mark.integration

UserHeaders = Callable[..., Awaitable[dict[str, str]]]
AuditRow = Callable[[str], Awaitable[dict[str, Any]]]

USER = "2088000000000001"  # conftest's sandbox login
FOLLOWER = "2088000000000004"
VEHICLE_BODY = {"plate_type": "02", "plate_number": "渝C34567", "vin": "AB9876"}


def fail_with(error: DomainError) -> Any:
    def answer(_req: Any) -> Any:
        raise error

    return answer


def relations_in_turn(*answers: dict[str, str]) -> Any:
    """GetRelations answering each mapping in turn (the last one repeats)."""
    queue = list(answers)

    def answer(_req: Any) -> q.GetRelationsResponse:
        return q.GetRelationsResponse(relations=queue.pop(0) if len(queue) > 1 else queue[0])

    return answer


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (DomainError(SMS_RESEND_TOO_SOON, details={"retry_after_s": 37}), 429, "37"),
        (DomainError(FOLLOW_QUOTA_EXCEEDED, details={"quota": "vehicle_followers"}), 429, None),
    ],
    ids=["resend", "quota"],
)
async def test_r_sms_1_r_fol_4_refusals_cross_grpc_with_their_details(
    client: httpx.AsyncClient,
    fake: Any,
    user_headers: UserHeaders,
    error: DomainError,
    status: int,
    retry_after: str | None,
) -> None:
    headers = await user_headers(person_id="p-1")
    fake.script("RequestVehicleFollow", fail_with(error))
    r = await client.post("/api/v1/follows/vehicles", json=VEHICLE_BODY, headers=headers)
    assert r.status_code == status, r.text
    assert error_body(r)["code"] == error.code and error_body(r)["details"] == error.details
    assert r.headers.get("retry-after") == retry_after
    (sent,) = fake.requests["RequestVehicleFollow"]
    assert (sent.caller.user_id, sent.caller.person_id) == (USER, "p-1")


async def test_r_sms_1_a_wrong_code_is_400_with_attempts_left(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script(
        "SubmitSmsCode", fail_with(DomainError(SMS_CODE_WRONG, details={"attempts_left": 3}))
    )
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": "000000"}, headers=headers
    )
    assert r.status_code == 400 and error_body(r)["details"] == {"attempts_left": 3}
    assert "GetRelations" not in fake.requests


async def test_a_confirmed_follow_answers_once_the_query_service_grants_it(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers(person_id="p-1")
    fake.script(
        "SubmitSmsCode",
        lambda _req: fol.Follow(
            follow_id="f-1",
            target=fol_events.FOLLOW_TARGET_VEHICLE,
            vehicle_id="veh-1",
            plate_number="渝C34567",
            consent="sms",
        ),
    )
    fake.script("GetRelations", relations_in_turn({}, {}, {"veh-1": "followed"}))
    r = await client.post(
        "/api/v1/follow-requests/req-1/sms-code", json={"code": "123456"}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["follow_id"] == "f-1"
    probes = fake.requests["GetRelations"]
    assert len(probes) == 3
    assert {(p.caller.user_id, p.caller.person_id) for p in probes} == {(USER, "p-1")}


async def test_r_fol_7_a_revocation_answers_once_the_follower_lost_access(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers(person_id="p-owner")
    fake.script(
        "RevokeFollower",
        lambda _req: fol.EndFollowResponse(
            follow_id="f-1",
            follower_user_id=FOLLOWER,
            follower_person_id="p-follower",
            target=fol_events.FOLLOW_TARGET_VEHICLE,
            vehicle_id="veh-1",
        ),
    )
    fake.script("GetRelations", relations_in_turn({"veh-1": "followed"}, {}))
    r = await client.delete("/api/v1/followers/f-1", headers=headers)
    assert r.status_code == 204, r.text
    (revoked,) = fake.requests["RevokeFollower"]
    assert (revoked.follow_id, revoked.caller.user_id) == ("f-1", USER)
    assert {p.caller.user_id for p in fake.requests["GetRelations"]} == {FOLLOWER}


async def test_r_sms_3_the_sandbox_outbox_is_audited_with_the_masked_phone_only(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    fake.script(
        "ListSandboxSms",
        lambda _req: fol.ListSandboxSmsResponse(
            messages=[
                fol.SandboxSms(
                    phone="13900000005", template_code="SMS_000000000", params={"code": "604213"}
                )
            ]
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get(
        "/internal/v1/sandbox/sms", params={"phone": "13900000005", "limit": "5"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["params"] == {"code": "604213"}
    (sent,) = fake.requests["ListSandboxSms"]
    assert (sent.phone, sent.limit, sent.caller.staff_role) == ("13900000005", 5, "clerk")
    row = await audit_row(trace_id)
    assert row["subjects"] == ["phone:139****0005"] and row["status_code"] == 200
    assert "604213" not in str(row)
