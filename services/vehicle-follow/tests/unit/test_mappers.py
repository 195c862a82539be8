"""Follow mapper tests: FollowStarted / FollowEnded carry what the query service's consumer
reads (follower user and person, target, subject, consent, times, reason), keyed by the
follow id; the RPC messages show what each party may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cqcommon.events import unpack
from cqcommon.protomap import timestamp_from_proto
from cqfollow.domain.events import FollowEnded, FollowStarted
from cqfollow.domain.follows import (
    Consent,
    EndReason,
    Follow,
    FollowView,
    RequestRow,
    Target,
    new_request,
    requester_view,
)
from cqfollow.entrypoints.mappers import (
    ended_to_proto,
    envelope_of,
    follow_to_proto,
    plate_type_text,
    request_to_proto,
)
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import events_pb2 as events

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
SMS_FOLLOW = Follow(
    follow_id="0b6f1f0e-0000-4000-8000-000000000001",
    follower_key="user:2088000000000004",
    follower_user_id="2088000000000004",
    follower_person_id="0b6f1f0e-0000-4000-8000-0000000000a1",
    target=Target.VEHICLE,
    vehicle_id="0b6f1f0e-0000-4000-8000-0000000000b1",
    licence_id=None,
    consent=Consent.SMS,
    started_at=NOW,
    expires_at=NOW + timedelta(days=365),
)


def test_follow_started_carries_what_the_read_model_grants_access_by() -> None:
    env = envelope_of(FollowStarted(SMS_FOLLOW))
    assert (env.aggregate_id, env.producer, env.event_type) == (
        SMS_FOLLOW.follow_id,
        "follow",
        "cqtraffic.follow.v1.FollowStarted",
    )
    e = unpack(env)
    assert isinstance(e, events.FollowStarted)
    assert (e.follow_id, e.follower_user_id, e.follower_person_id) == (
        SMS_FOLLOW.follow_id,
        "2088000000000004",
        SMS_FOLLOW.follower_person_id,
    )
    assert (e.target, e.vehicle_id, e.licence_id, e.consent) == (
        events.FOLLOW_TARGET_VEHICLE,
        SMS_FOLLOW.vehicle_id,
        "",
        "sms",
    )
    assert timestamp_from_proto(e.started_at) == NOW
    assert timestamp_from_proto(e.expires_at) == NOW + timedelta(days=365)


def test_follow_ended_carries_the_reason_and_time() -> None:
    ended = SMS_FOLLOW.ended(reason=EndReason.EXPIRED, at=NOW + timedelta(days=366))
    e = unpack(envelope_of(FollowEnded(ended)))
    assert isinstance(e, events.FollowEnded)
    assert (e.follow_id, e.reason, e.target) == (
        ended.follow_id,
        "expired",
        events.FOLLOW_TARGET_VEHICLE,
    )
    assert timestamp_from_proto(e.ended_at) == NOW + timedelta(days=366)
    with pytest.raises(ValueError):
        envelope_of(FollowEnded(SMS_FOLLOW))  # not ended


def test_end_follow_response_names_who_lost_access() -> None:
    r = ended_to_proto(SMS_FOLLOW.ended(reason=EndReason.REVOKED, at=NOW))
    assert (r.follower_user_id, r.follower_person_id, r.vehicle_id, r.target) == (
        "2088000000000004",
        SMS_FOLLOW.follower_person_id,
        SMS_FOLLOW.vehicle_id,
        events.FOLLOW_TARGET_VEHICLE,
    )


def test_follow_and_request_messages() -> None:
    f = follow_to_proto(FollowView(SMS_FOLLOW, "渝C34567", "02", ""))
    assert (f.plate_number, f.plate_type, f.consent) == (
        "渝C34567",
        common.PLATE_TYPE_SMALL_CAR,
        "sms",
    )
    assert timestamp_from_proto(f.expires_at) == NOW + timedelta(days=365)
    request = new_request(
        request_id="r1",
        requester_user_id="2088",
        requester_person_id=None,
        vehicle_id="v1",
        owner_person_id="o1",
        consent=Consent.SMS,
        now=NOW,
        ttl=timedelta(hours=72),
        sms_phone="13900000005",
        sms_resend_at=NOW + timedelta(seconds=60),
    )
    m = request_to_proto(requester_view(RequestRow(request, "渝C34567", "02", None)))
    assert (m.state, m.plate_number, m.sms_phone_masked) == (
        "pending_sms_code",
        "渝C***67",
        "139****0005",
    )
    assert timestamp_from_proto(m.sms_resend_at) == NOW + timedelta(seconds=60)
    assert timestamp_from_proto(m.expires_at) == NOW + timedelta(hours=72)


def test_plate_type_codes() -> None:
    assert plate_type_text(common.PLATE_TYPE_SMALL_NEV) == "52"
    assert plate_type_text(common.PLATE_TYPE_UNSPECIFIED) == ""
