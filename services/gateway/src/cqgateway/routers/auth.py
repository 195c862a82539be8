"""Logins: mini-program users through Alipay OAuth, counter staff with a password."""

from __future__ import annotations

from cqcommon.errors import (
    ALIPAY_UNAVAILABLE,
    AUTH_CODE_INVALID,
    SERVICE_UNAVAILABLE,
    STAFF_LOGIN_FAILED,
    DomainError,
)
from cqcommon.grpc_client import call
from cqtraffic.query.v1 import query_pb2
from fastapi import APIRouter, Request

from cqgateway.audit import audit_context
from cqgateway.deps import Context, JsonBody
from cqgateway.openapi import error_codes
from cqgateway.schemas import (
    AlipayLoginRequest,
    StaffLoginRequest,
    StaffTokenResponse,
    TokenResponse,
)

router = APIRouter(tags=["auth"])


@router.post(
    "/api/v1/auth/alipay",
    response_model=TokenResponse,
    dependencies=[JsonBody],
    summary="Log in with an Alipay auth code",
    description=(
        "Exchanges the mini-program's auth code with Alipay (`alipay.system.oauth.token`) "
        "and returns a user token. In sandbox mode the code `sandbox:<alipay_user_id>` logs in "
        "as that user. A user who is not in the registry still logs in and owns nothing "
        "(R-USR-1). Errors: 401 `AUTH_CODE_INVALID`, 503 `ALIPAY_UNAVAILABLE`."
    ),
    openapi_extra=error_codes(AUTH_CODE_INVALID, ALIPAY_UNAVAILABLE),
)
async def alipay_login(body: AlipayLoginRequest, ctx: Context) -> TokenResponse:
    backends = ctx.require_backends()
    user_id = await backends.alipay_oauth.exchange(body.auth_code)
    resolved = await call(
        backends.query.ResolveUser,
        query_pb2.ResolveUserRequest(alipay_user_id=user_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    issued = ctx.tokens.issue_user(user_id, resolved.person_id)
    return TokenResponse(token=issued.token, expires_at=issued.expires_at)


@router.post(
    "/internal/v1/auth/login",
    response_model=StaffTokenResponse,
    dependencies=[JsonBody],
    summary="Counter staff login",
    description=(
        "Returns a staff token (roles `clerk`, `supervisor`). Unknown user and wrong password "
        "both answer 401 `STAFF_LOGIN_FAILED`. Every attempt is audited with subject "
        "`staff:<username>`."
    ),
    openapi_extra=error_codes(STAFF_LOGIN_FAILED),
)
async def staff_login(
    body: StaffLoginRequest, request: Request, ctx: Context
) -> StaffTokenResponse:
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("staff", body.username)
    if ctx.staff is None:
        raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "starting"})
    account = await ctx.staff.authenticate(body.username, body.password)
    if audit is not None:
        audit.staff_id, audit.role = account.staff_id, account.role
    issued = ctx.tokens.issue_staff(account.staff_id, account.role)
    return StaffTokenResponse(
        token=issued.token,
        expires_at=issued.expires_at,
        staff_id=account.staff_id,
        role=account.role,
    )
