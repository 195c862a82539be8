"""Sandbox-only use cases (R-SBX-1): staff read what the recording SMS adapter would have
sent (R-SMS-3), so the sandbox walk needs no phone, and the roster loader seeds the follows
the sandbox starts with. Outside sandbox mode, and for anyone but staff, both answer
SANDBOX_ONLY (a 404)."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.errors import FOLLOW_VEHICLE_NOT_FOUND, NOT_FOUND, DomainError

from cqfollow.domain.callers import Caller, require_sandbox_staff
from cqfollow.domain.follows import (
    Consent,
    FollowRow,
    FollowView,
    Target,
    follower_key_of,
    follower_view,
)
from cqfollow.ports import SentMessage
from cqfollow.service_layer.activation import activate_vehicle_follow
from cqfollow.service_layer.config import Deps

DEFAULT_SMS_LIMIT = 50
MAX_SMS_LIMIT = 200


async def list_sandbox_sms(
    deps: Deps, *, caller: Caller, phone: str, limit: int
) -> Sequence[SentMessage]:
    """The newest messages the recording adapter kept, for one phone or all."""
    require_sandbox_staff(caller, sandbox_mode=deps.config.sandbox_mode)
    if deps.sms_outbox is None:
        return []  # the configured sender records nothing
    size = DEFAULT_SMS_LIMIT if limit <= 0 else min(limit, MAX_SMS_LIMIT)
    return await deps.sms_outbox.recent("".join(phone.split()) or None, size)


async def seed_follow(
    deps: Deps, *, caller: Caller, follower_person_id: str, vehicle_id: str
) -> FollowView:
    """An active follow with the owner's consent already given (the roster's), idempotent
    by (follower, vehicle) and within the quotas like any other activation. A vehicle (or
    follower) the registry events have not brought yet answers FOLLOW_VEHICLE_NOT_FOUND
    (or NOT_FOUND): the loader retries."""
    require_sandbox_staff(caller, sandbox_mode=deps.config.sandbox_mode)
    now = deps.clock.now()
    async with deps.uows() as uow:
        vehicle = await uow.registry.vehicle(vehicle_id)
        if vehicle is None:
            raise DomainError(FOLLOW_VEHICLE_NOT_FOUND)
        person = await uow.registry.person(follower_person_id)
        if person is None:
            raise DomainError(NOT_FOUND, details={"missing": "follower_person"})
        key = follower_key_of(user_id=person.alipay_user_id, person_id=person.person_id)
        running = await uow.follows.running_of(key, Target.VEHICLE, vehicle.vehicle_id)
        if running is not None and running.active_at(now):
            return follower_view(FollowRow(running, vehicle.plate_number, vehicle.plate_type))
        follow = await activate_vehicle_follow(
            uow,
            deps,
            follower_user_id=person.alipay_user_id,
            follower_person_id=person.person_id,
            vehicle_id=vehicle.vehicle_id,
            consent=Consent.OWNER_APP,
            request_id=None,
            now=now,
        )
        await uow.commit()
    return follower_view(FollowRow(follow, vehicle.plate_number, vehicle.plate_type))
