"""Following friends' vehicles and licences (R-FOL-1..8, R-SMS-1..3, R-X-3): ask to follow a
vehicle, consent by the owner in the app or by an SMS code, the caller's follows with what
the quotas leave, unfollow, an owner's followers and revocation, licence follows, and the
sandbox outbox of the recording SMS adapter for staff.

Thin routes over the FollowService. What is the gateway's own:

* bodies are checked before any call, with the proof lookups' identifier checks (400
  ``INVALID_PLATE_NUMBER``, ``INVALID_VIN``, ``INVALID_ID_NUMBER``, ``INVALID_FILE_NO``) and
  the schema's (422 for a code that is not 6 digits);
* read-your-writes on access (``cqgateway.access_sync``): after a follow became active (SMS
  code, the owner's approval, licence follow) or ended (unfollow, revocation, licence unfollow) the route answers
  once the query read model agrees (bounded), so the follower's very next request sees it;
* ``GET /internal/v1/sandbox/sms`` exists in sandbox mode only (404 ``SANDBOX_ONLY``
  otherwise, before any call) and is audited with the masked phone; codes never reach a log.

A request or follow id the caller may not act on answers 404 exactly like an unknown one
(the service makes no difference either).
"""

from __future__ import annotations

import logging
from typing import Annotated

from cqcommon.errors import SANDBOX_ONLY, DomainError
from cqcommon.grpc_client import call
from cqcommon.identifiers import mask_phone
from cqtraffic.common.v1.types_pb2 import Caller
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from fastapi import APIRouter, Query, Request, Response

from cqgateway import mappers
from cqgateway.audit import audit_context
from cqgateway.deps import Context, CurrentUser, JsonBody, StaffUser
from cqgateway.follow_codes import (
    APPROVE_ERRORS,
    DECLINE_ERRORS,
    END_FOLLOW_ERRORS,
    FOLLOW_LICENCE_ERRORS,
    REQUEST_VEHICLE_FOLLOW_ERRORS,
    SANDBOX_SMS_ERRORS,
    SUBMIT_SMS_CODE_ERRORS,
)
from cqgateway.openapi import error_codes
from cqgateway.responses import json_of
from cqgateway.routers.violations import PathId
from cqgateway.schemas import (
    FollowerListOut,
    FollowLicenceBody,
    FollowListOut,
    FollowOut,
    FollowRequestOut,
    FollowVehicleBody,
    IncomingFollowRequestsOut,
    SandboxSmsListOut,
    SmsCodeBody,
)

log = logging.getLogger("cqgateway.follows")

router = APIRouter(prefix="/api/v1", tags=["follows"])
internal_router = APIRouter(prefix="/internal/v1", tags=["sandbox"])

#: A phone number as the registry keeps it (digits, an optional leading +).
PHONE_PATTERN = r"^\+?[0-9]{6,20}$"

_NOT_YOURS = "Another user's {0} answers 404 `{1}` exactly like an unknown one."
_READ_YOUR_WRITES = (
    " The answer comes once the follower's access has changed everywhere (the very next "
    "request of the follower sees it)."
)


def _created(body: Response) -> Response:
    body.status_code = 201
    return body


def _no_content() -> Response:
    return Response(status_code=204)


@router.post(
    "/follows/vehicles",
    status_code=201,
    response_model=FollowRequestOut,
    dependencies=[JsonBody],
    summary="Ask to follow a friend's vehicle",
    description=(
        "R-FOL-1: plate type, plate number and the VIN's last 6 characters (or all 17) of a "
        "Chongqing vehicle owned by someone else; a wrong VIN answers like no such vehicle "
        "(404 `FOLLOW_VEHICLE_NOT_FOUND`). R-FOL-2: if the owner uses the platform the "
        "request waits for the owner's approval in the app (`pending_owner_approval`); "
        "otherwise a 6-digit code goes to the owner's phone on record (`pending_sms_code`, "
        "`sms_phone_masked`, `sms_resend_at`) and the caller enters it with "
        "`POST /api/v1/follow-requests/{request_id}/sms-code`. A request nobody acts on "
        "expires at `expires_at` and spends no chance. Refusals: 403 `FOLLOW_OWN_VEHICLE`; "
        "409 `ALREADY_FOLLOWING` (followed, or a request waits), `FOLLOW_NO_CONSENT_ROUTE` "
        "(no owner account and no phone on record); 429 `FOLLOW_QUOTA_EXCEEDED` with "
        "`details.quota` = `active_vehicle_follows` (R-FOL-3, 2 at once), `chances_this_year` "
        "(R-FOL-3, 3 a year) or `vehicle_followers` (R-FOL-4, 3 per vehicle); 429 "
        "`SMS_RESEND_TOO_SOON` / `SMS_PHONE_LOCKED` (R-SMS-1/2) with `Retry-After`; 503 "
        "`SMS_UNAVAILABLE`. Identifier formats: 400 `INVALID_PLATE_NUMBER`, `INVALID_VIN`."
    ),
    openapi_extra=error_codes(*REQUEST_VEHICLE_FOLLOW_ERRORS),
)
async def request_vehicle_follow(
    body: FollowVehicleBody, user: CurrentUser, ctx: Context
) -> Response:
    grpc_request = mappers.follow_vehicle_request(user.caller, body)
    answer = await call(
        ctx.require_backends().follow.RequestVehicleFollow,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return _created(json_of(mappers.follow_request_out(answer)))


@router.post(
    "/follow-requests/{request_id}/sms-code",
    status_code=201,
    response_model=FollowOut,
    dependencies=[JsonBody],
    summary="Complete an SMS consent with the code the owner received",
    description=(
        "R-FOL-2, R-SMS-1: the 6 digits sent to the owner's phone (valid 5 minutes, used "
        "once). Right: the follow is active (201, `consent` = `sms`, `expires_at` one year "
        "on, R-FOL-5) and a chance is spent." + _READ_YOUR_WRITES + " Wrong: 400 "
        "`SMS_CODE_WRONG` with `details.attempts_left`; the fifth wrong entry voids the code "
        "and the request (`cancelled`); no live code (expired, used, voided): 409 "
        "`SMS_CODE_EXPIRED`. A request not waiting for a code: 409 "
        "`FOLLOW_REQUEST_NOT_PENDING`. Quotas are checked again as the follow becomes active "
        "(429 `FOLLOW_QUOTA_EXCEEDED`). " + _NOT_YOURS.format("request", "FOLLOW_REQUEST_NOT_FOUND")
    ),
    openapi_extra=error_codes(*SUBMIT_SMS_CODE_ERRORS),
)
async def submit_sms_code(
    request_id: PathId, body: SmsCodeBody, user: CurrentUser, ctx: Context
) -> Response:
    follow = await call(
        ctx.require_backends().follow.SubmitSmsCode,
        mappers.submit_sms_code_request(user.caller, request_id, body),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    out = mappers.follow_out(follow)
    await ctx.access_sync().started(user.caller, follow)
    return _created(json_of(out))


@router.get(
    "/follow-requests/incoming",
    response_model=IncomingFollowRequestsOut,
    summary="Follow requests awaiting the caller's approval as an owner",
    description=(
        "R-FOL-2: requests to follow the caller's vehicles that wait for the caller "
        "(`pending_owner_approval`), oldest first, with the requester's name masked and the "
        "plate whole."
    ),
)
async def list_incoming_requests(user: CurrentUser, ctx: Context) -> Response:
    answer = await call(
        ctx.require_backends().follow.ListIncomingRequests,
        mappers.list_incoming_requests_request(user.caller),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.incoming_requests_out(answer))


@router.post(
    "/follow-requests/{request_id}/approve",
    response_model=FollowRequestOut,
    summary="Approve a follow request (owner)",
    description=(
        "R-FOL-2: the owner agrees; the request is `approved` with its `follow_id` and the "
        "requester follows the vehicle (a chance of theirs is spent, R-FOL-3); the answer "
        "comes once the requester can read the vehicle's violations. Quotas are "
        "checked again as the follow becomes active (429 `FOLLOW_QUOTA_EXCEEDED`; 409 "
        "`ALREADY_FOLLOWING`). A request not waiting for the owner: 409 "
        "`FOLLOW_REQUEST_NOT_PENDING`. A request for someone else's vehicle answers 404 "
        "`FOLLOW_REQUEST_NOT_FOUND` exactly like an unknown one."
    ),
    openapi_extra=error_codes(*APPROVE_ERRORS),
)
async def approve_request(request_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    answer = await call(
        ctx.require_backends().follow.ApproveRequest,
        mappers.decide_request(user.caller, request_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    if answer.follow_id:
        # read-your-writes for the requester: the next read of the vehicle is theirs
        requester = Caller(user_id=answer.requester_user_id, person_id=answer.requester_person_id)
        started = fol.Follow(
            follow_id=answer.follow_id,
            target=fol_events.FOLLOW_TARGET_VEHICLE,
            vehicle_id=answer.vehicle_id,
        )
        await ctx.access_sync().started(requester, started)
    return json_of(mappers.follow_request_out(answer))


@router.post(
    "/follow-requests/{request_id}/decline",
    response_model=FollowRequestOut,
    summary="Decline a follow request (owner)",
    description=(
        "R-FOL-2: the owner refuses; the request is `declined` and spends no chance of the "
        "requester's. A request not waiting for the owner: 409 `FOLLOW_REQUEST_NOT_PENDING`. "
        "A request for someone else's vehicle answers 404 `FOLLOW_REQUEST_NOT_FOUND` exactly "
        "like an unknown one."
    ),
    openapi_extra=error_codes(*DECLINE_ERRORS),
)
async def decline_request(request_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    answer = await call(
        ctx.require_backends().follow.DeclineRequest,
        mappers.decide_request(user.caller, request_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.follow_request_out(answer))


@router.get(
    "/follows",
    response_model=FollowListOut,
    summary="The caller's follows with quota use",
    description=(
        "The caller's active follows of vehicles and licences; R-FOL-3: `active` of "
        "`max_active` follows of other people's vehicles and `chances_left_this_year` of "
        "`chances_per_year` (calendar year, Asia/Shanghai); R-FOL-8: `licence_follows` of "
        "`max_licence_follows`; and the caller's requests still waiting for an owner or an SMS "
        "code (`pending_requests`)."
    ),
)
async def list_follows(user: CurrentUser, ctx: Context) -> Response:
    answer = await call(
        ctx.require_backends().follow.ListFollows,
        mappers.list_follows_request(user.caller),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.follow_list_out(answer))


@router.delete(
    "/follows/vehicles/{follow_id}",
    status_code=204,
    response_class=Response,
    summary="Unfollow a vehicle",
    description=(
        "R-FOL-7: at any time; the chance spent is not given back (R-FOL-3). The former "
        "follower's next request for the vehicle's violations answers 404."
        + _READ_YOUR_WRITES
        + " "
        + _NOT_YOURS.format("follow", "FOLLOW_NOT_FOUND")
    ),
    openapi_extra=error_codes(*END_FOLLOW_ERRORS),
)
async def unfollow_vehicle(follow_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    ended = await call(
        ctx.require_backends().follow.UnfollowVehicle,
        mappers.end_follow_request(user.caller, follow_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    await ctx.access_sync().ended(ended)
    return _no_content()


@router.get(
    "/followers",
    response_model=FollowerListOut,
    summary="Who follows the caller's vehicles (an addition to API.md)",
    description=(
        "R-X-3 (an addition to API.md): every active follower of the caller's vehicles, "
        "since when, with the follower's name masked (R-Q-4) and how the follow was "
        "authorised; `follower_id` is what `DELETE /api/v1/followers/{follower_id}` revokes."
    ),
)
async def list_followers(user: CurrentUser, ctx: Context) -> Response:
    answer = await call(
        ctx.require_backends().follow.ListFollowers,
        mappers.list_followers_request(user.caller),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(mappers.follower_list_out(answer))


@router.delete(
    "/followers/{follower_id}",
    status_code=204,
    response_class=Response,
    summary="An owner revokes a follower",
    description=(
        "R-FOL-7: the owner ends someone's follow of one of the owner's vehicles "
        "(`follower_id` from `GET /api/v1/followers`). The former follower's next request "
        "for the vehicle's violations answers 404." + _READ_YOUR_WRITES + " A follow of "
        "someone else's vehicle answers 404 `FOLLOW_NOT_FOUND` exactly like an unknown one."
    ),
    openapi_extra=error_codes(*END_FOLLOW_ERRORS),
)
async def revoke_follower(follower_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    ended = await call(
        ctx.require_backends().follow.RevokeFollower,
        mappers.end_follow_request(user.caller, follower_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    await ctx.access_sync().ended(ended)
    return _no_content()


@router.post(
    "/follows/licences",
    status_code=201,
    response_model=FollowOut,
    dependencies=[JsonBody],
    summary="Follow a friend's driving licence",
    description=(
        "R-FOL-8: the holder's name, the licence number (18-char ID number) and the 12-digit "
        "file number must match; no consent step; at most `max_licence_follows` (5) at once "
        "(429 `FOLLOW_QUOTA_EXCEEDED`, `details.quota` = `licence_follows`). Anything that "
        "does not match answers 404 `FOLLOW_LICENCE_NOT_FOUND`; one's own licence 403 "
        "`FOLLOW_OWN_LICENCE`; a licence already followed 409 `ALREADY_FOLLOWING`. "
        "Identifier formats: 400 `INVALID_ID_NUMBER`, `INVALID_FILE_NO`." + _READ_YOUR_WRITES
    ),
    openapi_extra=error_codes(*FOLLOW_LICENCE_ERRORS),
)
async def follow_licence(body: FollowLicenceBody, user: CurrentUser, ctx: Context) -> Response:
    grpc_request = mappers.follow_licence_request(user.caller, body)
    follow = await call(
        ctx.require_backends().follow.FollowLicence,
        grpc_request,
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    out = mappers.follow_out(follow)
    await ctx.access_sync().started(user.caller, follow)
    return _created(json_of(out))


@router.delete(
    "/follows/licences/{follow_id}",
    status_code=204,
    response_class=Response,
    summary="Unfollow a driving licence",
    description=(
        "R-FOL-8: at any time. The former follower's next request for the licence's "
        "violations answers 404 (unless a proof lookup still grants it, R-Q-1)."
        + _READ_YOUR_WRITES
        + " "
        + _NOT_YOURS.format("follow", "FOLLOW_NOT_FOUND")
    ),
    openapi_extra=error_codes(*END_FOLLOW_ERRORS),
)
async def unfollow_licence(follow_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    ended = await call(
        ctx.require_backends().follow.UnfollowLicence,
        mappers.end_follow_request(user.caller, follow_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    await ctx.access_sync().ended(ended)
    return _no_content()


# -- counter: the sandbox SMS outbox (R-SMS-3) ---------------------------------------------
@internal_router.get(
    "/sandbox/sms",
    response_model=SandboxSmsListOut,
    summary="What the recording SMS adapter would have sent (sandbox mode only; an addition)",
    description=(
        "R-SMS-3 (an addition to API.md): in sandbox mode SMS are recorded, not sent; staff "
        "read them here, consent codes included, so the sandbox walk needs no phone. Newest "
        "first, for one `phone` or every phone. Outside sandbox mode this endpoint does not "
        "exist: 404 `SANDBOX_ONLY`. Any staff role; audited with the subject "
        "`phone:<masked>` of the phone asked for and of every phone in the answer."
    ),
    openapi_extra=error_codes(*SANDBOX_SMS_ERRORS),
)
async def list_sandbox_sms(
    staff: StaffUser,
    request: Request,
    ctx: Context,
    phone: Annotated[
        str | None, Query(pattern=PHONE_PATTERN, description="Only SMS to this phone.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Messages, newest first.")] = 20,
) -> Response:
    if not ctx.settings.sandbox_mode:
        raise DomainError(SANDBOX_ONLY)
    audit = audit_context(request)
    if audit is not None and phone:
        audit.add_subject("phone", mask_phone(phone))
    answer = await call(
        ctx.require_backends().follow.ListSandboxSms,
        mappers.sandbox_sms_request(staff.caller, phone, limit),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    if audit is not None:
        for message in answer.messages:
            audit.add_subject("phone", mask_phone(message.phone))
    return json_of(mappers.sandbox_sms_list_out(answer))
