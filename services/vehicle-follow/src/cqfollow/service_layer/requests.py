"""Use cases of follow requests and consent (R-FOL-1, R-FOL-2, R-SMS-1..3): ask to follow a
vehicle, confirm with the SMS code the owner read out, and the owner's side (incoming
requests, approve, decline).

Proof (R-FOL-1): the vehicle is looked up by plate in one query and the VIN compared in
constant time in code, so "no such vehicle" and "wrong VIN" run the same queries and answer
the same FOLLOW_VEHICLE_NOT_FOUND. Another user's request answers FOLLOW_REQUEST_NOT_FOUND
from the same query as an unknown id (the caller is in its WHERE clause).

SMS (R-FOL-2): the code is issued and the message sent *between* transactions, never inside
one. The checks run first (and commit nothing but the expiry of a lapsed request); then
``SmsCodes.issue`` (atomic per phone: of 100 racing requests to one phone exactly one gets a
code, R-SMS-1) and ``SmsSender.send``; only when the gateway took the message is the request
written. A failed send releases the code and writes nothing (SMS_UNAVAILABLE).

Activation goes through ``service_layer.activation`` (quotas counted under locks, R-FOL-6).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import replace

from cqcommon.errors import (
    ALREADY_FOLLOWING,
    FOLLOW_NO_CONSENT_ROUTE,
    FOLLOW_OWN_VEHICLE,
    FOLLOW_QUOTA_EXCEEDED,
    FOLLOW_REQUEST_NOT_FOUND,
    FOLLOW_REQUEST_NOT_PENDING,
    FOLLOW_VEHICLE_NOT_FOUND,
    SMS_CODE_EXPIRED,
    SMS_CODE_WRONG,
    SMS_PHONE_LOCKED,
    SMS_RESEND_TOO_SOON,
    SMS_UNAVAILABLE,
    DomainError,
)
from cqcommon.identifiers import is_chongqing_plate, parse_plate, parse_vin_proof
from cqcommon.masking import mask_phone

from cqfollow.domain.callers import Caller, require_user
from cqfollow.domain.follows import (
    Consent,
    FollowRequest,
    FollowRow,
    FollowView,
    RequestRow,
    RequestState,
    RequestView,
    Target,
    VehicleRecord,
    check_vehicle_quotas,
    decided,
    follower_view,
    match_vehicle,
    new_request,
    owner_view,
    requester_view,
    user_key,
    year_bounds,
)
from cqfollow.domain.sms import (
    CODE_PARAM,
    CodeCheck,
    SmsPhoneLockedError,
    SmsResendTooSoonError,
    SmsUnavailableError,
)
from cqfollow.ports import UnitOfWork
from cqfollow.service_layer.activation import activate_vehicle_follow
from cqfollow.service_layer.config import Deps

log = logging.getLogger(__name__)

#: Refusals at activation after which an SMS-confirmed request can never succeed: it is
#: cancelled (no chance was spent) rather than left waiting for a code that is used up.
_CANCELS_REQUEST = frozenset(
    {FOLLOW_QUOTA_EXCEEDED.code, ALREADY_FOLLOWING.code, FOLLOW_OWN_VEHICLE.code}
    | {FOLLOW_VEHICLE_NOT_FOUND.code}
)


def _is_own(vehicle: VehicleRecord, caller: Caller, user_id: str) -> bool:
    by_person = bool(caller.person_id) and vehicle.owner_person_id == caller.person_id
    return by_person or vehicle.owner_user_id == user_id


async def request_vehicle_follow(
    deps: Deps, *, caller: Caller, plate_type: str, plate_number: str, vin: str
) -> RequestView:
    """R-FOL-1/2: ask to follow someone else's vehicle. The owner on the platform gets a
    request to approve (``pending_owner_approval``); otherwise a code goes to the owner's
    phone on record (``pending_sms_code``). The same user asking again while their SMS
    request waits gets a new code for that request (R-SMS-1 cooldown applies)."""
    user_id = require_user(caller)
    ptype, plate = parse_plate(plate_type, plate_number)
    proof = parse_vin_proof(vin)
    now = deps.clock.now()
    key = user_key(user_id)
    limits = deps.config.limits
    async with deps.uows() as uow:
        candidates = await uow.registry.vehicles_by_plate(ptype.value, plate)
        if not is_chongqing_plate(plate):
            candidates = []  # R-FOL-1: Chongqing vehicles only (after the same one query)
        vehicle = match_vehicle(candidates, proof)
        # An owner not in the copy yet is answered like an unknown vehicle (not "no consent
        # route"): the registry's person event is on its way, and a retry will find them.
        if vehicle is None or not vehicle.owner_known:
            raise DomainError(FOLLOW_VEHICLE_NOT_FOUND)
        if _is_own(vehicle, caller, user_id):
            raise DomainError(FOLLOW_OWN_VEHICLE)
        running = await uow.follows.running_of(key, Target.VEHICLE, vehicle.vehicle_id)
        if running is not None and running.active_at(now):
            raise DomainError(ALREADY_FOLLOWING, details={"follow_id": running.follow_id})
        pending = await uow.requests.pending_of(user_id, vehicle.vehicle_id)
        if pending is not None and pending.lapsed_at(now):
            await uow.requests.expire(pending.request_id, now=now)
            pending = None
        if pending is not None and pending.consent is Consent.OWNER_APP:
            raise DomainError(ALREADY_FOLLOWING, details={"request_id": pending.request_id})
        # a courtesy: refuse a hopeless request at once (activation checks again, locked)
        use = await uow.follows.vehicle_quota_use(
            follower_key=key, vehicle_id=vehicle.vehicle_id, now=now, year=year_bounds(now)
        )
        check_vehicle_quotas(limits, use)
        if pending is None and vehicle.owner_on_platform:
            request = new_request(
                request_id=deps.new_id(),
                requester_user_id=user_id,
                requester_person_id=caller.person_id or None,
                vehicle_id=vehicle.vehicle_id,
                owner_person_id=vehicle.owner_person_id,
                consent=Consent.OWNER_APP,
                now=now,
                ttl=deps.config.request_ttl,
            )
            await uow.requests.add(request)
            await uow.commit()
            return requester_view(RequestRow(request, vehicle.plate_number, ptype.value, None))
        if not vehicle.owner_phone:
            raise DomainError(FOLLOW_NO_CONSENT_ROUTE)
        await uow.commit()  # only the expiry of a lapsed request, if any
    request_id = pending.request_id if pending is not None else deps.new_id()
    await _send_code(deps, phone=vehicle.owner_phone, request_id=request_id)
    resend_at = now + deps.config.sms_resend_interval
    async with deps.uows() as uow:
        if pending is None:
            request = new_request(
                request_id=request_id,
                requester_user_id=user_id,
                requester_person_id=caller.person_id or None,
                vehicle_id=vehicle.vehicle_id,
                owner_person_id=vehicle.owner_person_id,
                consent=Consent.SMS,
                now=now,
                ttl=deps.config.request_ttl,
                sms_phone=vehicle.owner_phone,
                sms_resend_at=resend_at,
            )
            await uow.requests.add(request)
        else:
            current = await uow.requests.lock_for_requester(request_id, user_id)
            if current is None or not current.pending_at(now):
                raise DomainError(FOLLOW_REQUEST_NOT_PENDING)  # decided while the SMS went out
            request = replace(
                current, sms_phone_masked=mask_phone(vehicle.owner_phone), sms_resend_at=resend_at
            )
            await uow.requests.save(request)
        await uow.commit()
    return requester_view(RequestRow(request, vehicle.plate_number, ptype.value, None))


async def _send_code(deps: Deps, *, phone: str, request_id: str) -> None:
    """Issue a code for the request and send it to the phone; on any failure nothing of it
    stays (the code is released, so the cooldown does not hold the owner back)."""
    try:
        code = await deps.sms_codes.issue(phone=phone, purpose_id=request_id, now=deps.clock.now())
    except SmsResendTooSoonError as exc:
        raise DomainError(
            SMS_RESEND_TOO_SOON, details={"retry_after_s": exc.retry_after_s}
        ) from None
    except SmsPhoneLockedError as exc:
        raise DomainError(SMS_PHONE_LOCKED, details={"retry_after_s": exc.retry_after_s}) from None
    try:
        await deps.sms_sender.send(
            phone=phone,
            template_code=deps.config.sms_template_code,
            params={CODE_PARAM: code},
        )
    except SmsUnavailableError as exc:
        # the reason names the provider's code, never the parameters (they hold the code)
        log.warning("follow request %s: SMS not sent (%s)", request_id, exc)
        await deps.sms_codes.release(phone=phone, purpose_id=request_id)
        raise DomainError(SMS_UNAVAILABLE) from None


def _entered_code(raw: str) -> str:
    """The code as typed: full-width digits from a Chinese keyboard count, spaces do not."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace())


async def submit_sms_code(deps: Deps, *, caller: Caller, request_id: str, code: str) -> FollowView:
    """R-FOL-2, R-SMS-1: the requester enters the code the owner read out; the right code
    makes the follow active (quotas checked under locks; a refusal there cancels the
    request and spends no chance). The last allowed wrong entry voids the code and cancels
    the request."""
    user_id = require_user(caller)
    now = deps.clock.now()
    async with deps.uows() as uow:
        request = await uow.requests.get_for_requester(request_id, user_id)
    if request is None:
        raise DomainError(FOLLOW_REQUEST_NOT_FOUND)
    if request.state is not RequestState.PENDING_SMS_CODE or not request.pending_at(now):
        raise DomainError(FOLLOW_REQUEST_NOT_PENDING)
    result = await deps.sms_codes.check(purpose_id=request.request_id, code=_entered_code(code))
    if result.outcome is CodeCheck.WRONG:
        raise DomainError(SMS_CODE_WRONG, details={"attempts_left": result.attempts_left})
    if result.outcome is CodeCheck.VOID:
        await _cancel(deps, request, user_id)
        raise DomainError(SMS_CODE_EXPIRED, details={"reason": "void"})
    if result.outcome is CodeCheck.EXPIRED:
        raise DomainError(SMS_CODE_EXPIRED, details={"reason": "expired"})
    now = deps.clock.now()
    async with deps.uows() as uow:
        current = await uow.requests.lock_for_requester(request.request_id, user_id)
        if (
            current is None
            or current.state is not RequestState.PENDING_SMS_CODE
            or not current.pending_at(now)
        ):
            raise DomainError(FOLLOW_REQUEST_NOT_PENDING)
        try:
            follow = await activate_vehicle_follow(
                uow,
                deps,
                follower_user_id=user_id,
                follower_person_id=current.requester_person_id,
                vehicle_id=current.vehicle_id,
                consent=Consent.SMS,
                request_id=current.request_id,
                now=now,
            )
        except DomainError as refusal:
            if refusal.code in _CANCELS_REQUEST:
                await uow.requests.save(decided(current, RequestState.CANCELLED, at=now))
                await uow.commit()
            raise
        approved = decided(current, RequestState.APPROVED, at=now, follow_id=follow.follow_id)
        await uow.requests.save(approved)
        row = await uow.requests.row_of(approved)
        await uow.commit()
    return follower_view(FollowRow(follow, row.plate_number, row.plate_type))


async def _cancel(deps: Deps, request: FollowRequest, user_id: str) -> None:
    async with deps.uows() as uow:
        current = await uow.requests.lock_for_requester(request.request_id, user_id)
        if current is not None and current.state.pending:
            await uow.requests.save(decided(current, RequestState.CANCELLED, at=deps.clock.now()))
            await uow.commit()


async def list_incoming_requests(deps: Deps, *, caller: Caller) -> list[RequestView]:
    """Requests awaiting the caller's approval as an owner, requester names masked."""
    require_user(caller)
    if not caller.person_id:
        return []  # owns nothing (R-USR-1)
    async with deps.uows().reading() as uow:
        rows = await uow.requests.incoming(caller.person_id, now=deps.clock.now())
    return [owner_view(row) for row in rows]


async def approve_request(deps: Deps, *, caller: Caller, request_id: str) -> RequestView:
    """R-FOL-2: the owner approves; the follow becomes active if the quotas allow it now.
    A quota refusal leaves the request pending (the owner may approve later, when a slot
    is free) and writes nothing."""
    require_user(caller)
    now = deps.clock.now()
    async with deps.uows() as uow:
        request = await _lock_owners(uow, caller, request_id)
        if request.state is not RequestState.PENDING_OWNER_APPROVAL or not request.pending_at(now):
            raise DomainError(FOLLOW_REQUEST_NOT_PENDING)
        follow = await activate_vehicle_follow(
            uow,
            deps,
            follower_user_id=request.requester_user_id,
            follower_person_id=request.requester_person_id,
            vehicle_id=request.vehicle_id,
            consent=Consent.OWNER_APP,
            request_id=request.request_id,
            now=now,
        )
        approved = decided(request, RequestState.APPROVED, at=now, follow_id=follow.follow_id)
        await uow.requests.save(approved)
        row = await uow.requests.row_of(approved)
        await uow.commit()
    return owner_view(row)


async def decline_request(deps: Deps, *, caller: Caller, request_id: str) -> RequestView:
    """R-FOL-2: the owner declines; no chance is spent."""
    require_user(caller)
    now = deps.clock.now()
    async with deps.uows() as uow:
        request = await _lock_owners(uow, caller, request_id)
        if request.state is not RequestState.PENDING_OWNER_APPROVAL or not request.pending_at(now):
            raise DomainError(FOLLOW_REQUEST_NOT_PENDING)
        declined = decided(request, RequestState.DECLINED, at=now)
        await uow.requests.save(declined)
        row = await uow.requests.row_of(declined)
        await uow.commit()
    return owner_view(row)


async def _lock_owners(uow: UnitOfWork, caller: Caller, request_id: str) -> FollowRequest:
    """The request asking the caller, locked; FOLLOW_REQUEST_NOT_FOUND for anything else,
    from the same query as an unknown id."""
    request = (
        await uow.requests.lock_for_owner(request_id, caller.person_id)
        if caller.person_id
        else None
    )
    if request is None:
        raise DomainError(FOLLOW_REQUEST_NOT_FOUND)
    return request
