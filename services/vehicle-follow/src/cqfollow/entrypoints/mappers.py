"""Domain <-> protobuf for the follow service: the caller, requests, follows, followers,
the end-of-follow answer, sandbox SMS, the events follow publishes (FollowStarted /
FollowEnded, keyed by follow id) and the registry events it learns from."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.events import new_envelope
from cqcommon.protomap import plate_type_from_proto, plate_type_to_proto, timestamp_to_proto
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.follow.v1 import events_pb2 as events
from cqtraffic.follow.v1 import follow_pb2 as pb

from cqfollow.domain.callers import Caller
from cqfollow.domain.events import DomainEvent, FollowEnded, FollowStarted
from cqfollow.domain.follows import Follow, FollowerView, FollowView, RequestView, Target
from cqfollow.ports import SentMessage
from cqfollow.service_layer.follows import FollowsOverview

PRODUCER = "follow"

_TARGETS: dict[Target, events.FollowTarget.ValueType] = {
    Target.VEHICLE: events.FOLLOW_TARGET_VEHICLE,
    Target.LICENCE: events.FOLLOW_TARGET_LICENCE,
}


def caller_from_proto(caller: common.Caller) -> Caller:
    return Caller(
        user_id=caller.user_id,
        person_id=caller.person_id,
        staff_id=caller.staff_id,
        staff_role=caller.staff_role,
    )


def plate_type_text(value: int) -> str:
    """The plate type code ("02") of a proto enum value; "" for UNSPECIFIED, which the
    use case refuses as INVALID_PLATE_TYPE."""
    plate = plate_type_from_proto(value)
    return plate.value if plate is not None else ""


def _plate_type(code: str) -> common.PlateType.ValueType:
    return plate_type_to_proto(code) if code else common.PLATE_TYPE_UNSPECIFIED


def request_to_proto(view: RequestView) -> pb.FollowRequest:
    r = view.request
    return pb.FollowRequest(
        request_id=r.request_id,
        state=r.state.value,
        vehicle_id=r.vehicle_id,
        plate_number=view.plate_number,
        plate_type=_plate_type(view.plate_type),
        requester_name_masked=view.requester_name_masked,
        sms_phone_masked=(r.sms_phone_masked or "") if r.state.pending else "",
        created_at=timestamp_to_proto(r.created_at),
        expires_at=timestamp_to_proto(r.expires_at),
        follow_id=r.follow_id or "",
        sms_resend_at=timestamp_to_proto(r.sms_resend_at),
        requester_user_id=r.requester_user_id,
        requester_person_id=r.requester_person_id or "",
    )


def follow_to_proto(view: FollowView) -> pb.Follow:
    f = view.follow
    return pb.Follow(
        follow_id=f.follow_id,
        target=_TARGETS[f.target],
        vehicle_id=f.vehicle_id or "",
        licence_id=f.licence_id or "",
        plate_number=view.plate_number,
        licence_holder_name_masked=view.licence_holder_name_masked,
        started_at=timestamp_to_proto(f.started_at),
        expires_at=timestamp_to_proto(f.expires_at),
        plate_type=_plate_type(view.plate_type),
        consent=f.consent.value,
    )


def follower_to_proto(view: FollowerView) -> pb.Follower:
    f = view.follow
    return pb.Follower(
        follower_id=f.follow_id,
        vehicle_id=f.vehicle_id or "",
        plate_number=view.plate_number,
        follower_name_masked=view.follower_name_masked,
        since=timestamp_to_proto(f.started_at),
        expires_at=timestamp_to_proto(f.expires_at),
        consent=f.consent.value,
    )


def follows_to_proto(o: FollowsOverview) -> pb.ListFollowsResponse:
    q = o.quota
    return pb.ListFollowsResponse(
        follows=[follow_to_proto(v) for v in o.follows],
        active=q.active,
        max_active=q.max_active,
        chances_left_this_year=q.chances_left_this_year,
        licence_follows=q.licence_follows,
        max_licence_follows=q.max_licence_follows,
        chances_per_year=q.chances_per_year,
        pending_requests=[request_to_proto(v) for v in o.pending],
    )


def ended_to_proto(f: Follow) -> pb.EndFollowResponse:
    """Who lost access (the gateway waits until the read model no longer grants it)."""
    return pb.EndFollowResponse(
        follow_id=f.follow_id,
        follower_user_id=f.follower_user_id or "",
        follower_person_id=f.follower_person_id or "",
        target=_TARGETS[f.target],
        vehicle_id=f.vehicle_id or "",
        licence_id=f.licence_id or "",
    )


def sandbox_sms_to_proto(messages: Sequence[SentMessage]) -> pb.ListSandboxSmsResponse:
    return pb.ListSandboxSmsResponse(
        messages=[
            pb.SandboxSms(
                phone=m.phone,
                template_code=m.template_code,
                params=dict(m.params),
                sent_at=timestamp_to_proto(m.sent_at),
            )
            for m in messages
        ]
    )


def envelope_of(event: DomainEvent) -> EventEnvelope:
    """The outbox envelope of a domain event (key: the follow id, so one follow's start and
    end stay in order on one partition)."""
    f = event.follow
    if isinstance(event, FollowStarted):
        return new_envelope(
            events.FollowStarted(
                follow_id=f.follow_id,
                follower_person_id=f.follower_person_id or "",
                follower_user_id=f.follower_user_id or "",
                target=_TARGETS[f.target],
                vehicle_id=f.vehicle_id or "",
                licence_id=f.licence_id or "",
                consent=f.consent.value,
                started_at=timestamp_to_proto(f.started_at),
                expires_at=timestamp_to_proto(f.expires_at),
            ),
            aggregate_id=f.follow_id,
            producer=PRODUCER,
            occurred_at=f.started_at,
        )
    if isinstance(event, FollowEnded):
        if f.ended_at is None or f.end_reason is None:
            raise ValueError(f"FollowEnded of {f.follow_id} without its end")
        return new_envelope(
            events.FollowEnded(
                follow_id=f.follow_id,
                follower_person_id=f.follower_person_id or "",
                follower_user_id=f.follower_user_id or "",
                target=_TARGETS[f.target],
                vehicle_id=f.vehicle_id or "",
                licence_id=f.licence_id or "",
                reason=f.end_reason.value,
                ended_at=timestamp_to_proto(f.ended_at),
            ),
            aggregate_id=f.follow_id,
            producer=PRODUCER,
            occurred_at=f.ended_at,
        )
    raise TypeError(f"no wire format for {type(event).__name__}")
