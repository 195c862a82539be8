"""Making a vehicle follow active, with its quotas checked where they cannot be raced
(R-FOL-3, R-FOL-4, R-FOL-6).

Every activation (an SMS code confirmed, an owner's approval, a sandbox seed) goes through
``activate_vehicle_follow`` inside the transaction that writes the follow: it locks the
follower's quota row, then the vehicle's row (always in that order, so two activations
never wait on each other in a circle), and only then counts. Two activations of one
follower, or of one vehicle, therefore count one after the other, each seeing what the
other committed; the count and the insert are one decision. The pre-check a request makes
when it is created is only a courtesy (a hopeless request is refused at once); this is the
check that holds.
"""

from __future__ import annotations

from datetime import datetime

from cqcommon.errors import (
    ALREADY_FOLLOWING,
    FOLLOW_OWN_VEHICLE,
    FOLLOW_VEHICLE_NOT_FOUND,
    DomainError,
)

from cqfollow.domain.events import FollowEnded, FollowStarted
from cqfollow.domain.follows import (
    Consent,
    Follow,
    Target,
    check_vehicle_quotas,
    follower_key_of,
    year_bounds,
)
from cqfollow.ports import UnitOfWork
from cqfollow.service_layer.config import Deps


async def activate_vehicle_follow(
    uow: UnitOfWork,
    deps: Deps,
    *,
    follower_user_id: str | None,
    follower_person_id: str | None,
    vehicle_id: str,
    consent: Consent,
    request_id: str | None,
    now: datetime,
) -> Follow:
    """Add an active follow of the vehicle and record ``FollowStarted``, or raise the
    refusal (FOLLOW_QUOTA_EXCEEDED naming its quota, ALREADY_FOLLOWING, ...). The caller
    commits; on a refusal it may still commit what it decided about its request (a lapsed
    follow this found and ended stays ended, with its ``FollowEnded``)."""
    key = follower_key_of(user_id=follower_user_id, person_id=follower_person_id)
    await uow.follows.lock_follower(key, now=now)
    vehicle = await uow.registry.lock_vehicle(vehicle_id)
    if vehicle is None:
        raise DomainError(FOLLOW_VEHICLE_NOT_FOUND)
    if follower_person_id and vehicle.owner_person_id == follower_person_id:
        raise DomainError(FOLLOW_OWN_VEHICLE)  # the car changed hands since the request
    running = await uow.follows.running_of(key, Target.VEHICLE, vehicle_id)
    if running is not None:
        if running.active_at(now):
            raise DomainError(ALREADY_FOLLOWING, details={"follow_id": running.follow_id})
        # an SMS follow past its year that the nightly job has not ended yet: end it now,
        # so the new one is the only running follow of this follower and vehicle
        lapsed = await uow.follows.end_lapsed(running.follow_id, now=now)
        if lapsed is not None:
            uow.record(FollowEnded(lapsed))
    use = await uow.follows.vehicle_quota_use(
        follower_key=key, vehicle_id=vehicle_id, now=now, year=year_bounds(now)
    )
    check_vehicle_quotas(deps.config.limits, use)
    follow = Follow(
        follow_id=deps.new_id(),
        follower_key=key,
        follower_user_id=follower_user_id or None,
        follower_person_id=follower_person_id or None,
        target=Target.VEHICLE,
        vehicle_id=vehicle_id,
        licence_id=None,
        consent=consent,
        started_at=now,
        expires_at=now + deps.config.sms_follow_ttl if consent is Consent.SMS else None,
        request_id=request_id,
    )
    await uow.follows.add(follow)
    uow.record(FollowStarted(follow))
    return follow
