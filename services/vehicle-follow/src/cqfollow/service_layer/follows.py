"""Use cases of follows themselves: the follower's list with quota use (R-FOL-3), the
owner's list of followers (R-X-3), unfollow and revoke (R-FOL-7), and licence follows
(R-FOL-8).

Ending a follow is one conditional statement with the caller in its WHERE clause: another
user's follow, an unknown id and one already ended all answer FOLLOW_NOT_FOUND from the same
query, and of two racing ends (unfollow and revoke) exactly one wins and publishes
``FollowEnded``. The answer names the follower who lost access, so the gateway can wait
until the read model no longer grants it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.errors import (
    ALREADY_FOLLOWING,
    FOLLOW_LICENCE_NOT_FOUND,
    FOLLOW_NOT_FOUND,
    FOLLOW_OWN_LICENCE,
    VALIDATION_FAILED,
    DomainError,
)
from cqcommon.identifiers import parse_file_no, parse_id_number

from cqfollow.domain.callers import Caller, require_user
from cqfollow.domain.events import FollowEnded, FollowStarted
from cqfollow.domain.follows import (
    Consent,
    EndReason,
    Follow,
    FollowerView,
    FollowRow,
    FollowView,
    QuotaOverview,
    RequestView,
    Target,
    check_licence_quota,
    follower_view,
    match_licence,
    normalise_name,
    overview,
    owner_follower_view,
    requester_view,
    user_key,
    year_bounds,
)
from cqfollow.service_layer.config import Deps

#: The longest name a licence follow compares (registry names are far shorter).
MAX_NAME_CHARS = 50


@dataclass(frozen=True)
class FollowsOverview:
    """``GET /api/v1/follows``: active follows, quota use and waiting requests."""

    follows: list[FollowView]
    quota: QuotaOverview
    pending: list[RequestView]


async def list_follows(deps: Deps, *, caller: Caller) -> FollowsOverview:
    """R-FOL-3: the caller's active follows (vehicles and licences), how many slots and
    chances are used and left, and the requests still waiting."""
    user_id = require_user(caller)
    key = user_key(user_id)
    now = deps.clock.now()
    async with deps.uows().reading() as uow:
        rows = await uow.follows.follows_of(key, now=now)
        use = await uow.follows.vehicle_quota_use(
            follower_key=key, vehicle_id=None, now=now, year=year_bounds(now)
        )
        licences = await uow.follows.active_licence_follows(key, now=now)
        waiting = await uow.requests.waiting_of(user_id, now=now)
    return FollowsOverview(
        follows=[follower_view(row) for row in rows],
        quota=overview(
            deps.config.limits,
            active=use.active,
            chances_used=use.chances_used,
            licence_follows=licences,
        ),
        pending=[requester_view(row) for row in waiting],
    )


async def list_followers(deps: Deps, *, caller: Caller) -> list[FollowerView]:
    """R-X-3: who follows the caller's vehicles and since when, names masked."""
    require_user(caller)
    if not caller.person_id:
        return []  # owns nothing (R-USR-1)
    async with deps.uows().reading() as uow:
        rows = await uow.follows.followers_of(caller.person_id, now=deps.clock.now())
    return [owner_follower_view(row) for row in rows]


async def _end_own(deps: Deps, *, caller: Caller, follow_id: str, target: Target) -> Follow:
    user_id = require_user(caller)
    now = deps.clock.now()
    async with deps.uows() as uow:
        ended = await uow.follows.end_for_follower(
            follow_id,
            follower_key=user_key(user_id),
            target=target,
            reason=EndReason.UNFOLLOWED.value,
            now=now,
        )
        if ended is None:
            raise DomainError(FOLLOW_NOT_FOUND)
        uow.record(FollowEnded(ended))
        await uow.commit()
    return ended


async def unfollow_vehicle(deps: Deps, *, caller: Caller, follow_id: str) -> Follow:
    """R-FOL-7: the follower ends their vehicle follow (the chance is not given back)."""
    return await _end_own(deps, caller=caller, follow_id=follow_id, target=Target.VEHICLE)


async def unfollow_licence(deps: Deps, *, caller: Caller, follow_id: str) -> Follow:
    """R-FOL-8: the follower deletes their licence follow."""
    return await _end_own(deps, caller=caller, follow_id=follow_id, target=Target.LICENCE)


async def revoke_follower(deps: Deps, *, caller: Caller, follow_id: str) -> Follow:
    """R-FOL-7: the owner ends someone's follow of their vehicle."""
    require_user(caller)
    now = deps.clock.now()
    async with deps.uows() as uow:
        ended = (
            await uow.follows.end_for_owner(
                follow_id,
                owner_person_id=caller.person_id,
                reason=EndReason.REVOKED.value,
                now=now,
            )
            if caller.person_id
            else None
        )
        if ended is None:
            raise DomainError(FOLLOW_NOT_FOUND)
        uow.record(FollowEnded(ended))
        await uow.commit()
    return ended


def _name(raw: str) -> str:
    name = normalise_name(raw)
    if not name or len(name) > MAX_NAME_CHARS:
        raise DomainError(VALIDATION_FAILED, details={"field": "name"})
    return name


async def follow_licence(
    deps: Deps, *, caller: Caller, name: str, licence_no: str, file_no: str
) -> FollowView:
    """R-FOL-8: follow a friend's licence by its holder's name, its number and its file
    number, all three compared in constant time; no consent step, active at once, at most
    ``LICENCE_FOLLOW_LIMIT`` at once. Any mismatch answers like no such licence."""
    user_id = require_user(caller)
    holder = _name(name)
    number = parse_id_number(licence_no)
    file = parse_file_no(file_no)
    key = user_key(user_id)
    now = deps.clock.now()
    async with deps.uows() as uow:
        record = match_licence(
            await uow.registry.licence_by_number(number),
            name=holder,
            licence_no=number,
            file_no=file,
        )
        if record is None:
            raise DomainError(FOLLOW_LICENCE_NOT_FOUND)
        own_person = bool(caller.person_id) and record.person_id == caller.person_id
        if own_person or record.holder_user_id == user_id:
            raise DomainError(FOLLOW_OWN_LICENCE)
        await uow.follows.lock_follower(key, now=now)
        running = await uow.follows.running_of(key, Target.LICENCE, record.licence_id)
        if running is not None:
            raise DomainError(ALREADY_FOLLOWING, details={"follow_id": running.follow_id})
        check_licence_quota(
            deps.config.limits, await uow.follows.active_licence_follows(key, now=now)
        )
        follow = Follow(
            follow_id=deps.new_id(),
            follower_key=key,
            follower_user_id=user_id,
            follower_person_id=caller.person_id or None,
            target=Target.LICENCE,
            vehicle_id=None,
            licence_id=record.licence_id,
            consent=Consent.NONE,
            started_at=now,
        )
        await uow.follows.add(follow)
        uow.record(FollowStarted(follow))
        await uow.commit()
    return follower_view(FollowRow(follow, licence_holder_name=record.holder_name))
