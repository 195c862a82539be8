"""Domain events the follow use cases record in a unit of work (plain dataclasses); the
unit of work's adapter encodes them (protobuf envelope, topic cqtraffic.follow.follow.v1,
key = follow id, so a follow's start and end stay in order) into the outbox in the same
transaction as the change. The query service grants access on ``FollowStarted`` and takes
it away on ``FollowEnded``."""

from __future__ import annotations

from dataclasses import dataclass

from cqfollow.domain.follows import Follow


@dataclass(frozen=True)
class FollowStarted:
    """A follow became active (consent given, or a licence follow made)."""

    follow: Follow


@dataclass(frozen=True)
class FollowEnded:
    """A follow ended: unfollowed, revoked by the owner, or expired (R-FOL-5, R-FOL-7).
    ``follow.ended_at`` and ``follow.end_reason`` are set."""

    follow: Follow


DomainEvent = FollowStarted | FollowEnded
