"""The caller's own page (``GET /api/v1/me``): person, own and followed vehicles and
licences with points (R-Q-1, R-X-1); masking is the query service's (R-Q-4)."""

from __future__ import annotations

from cqcommon.grpc_client import call
from fastapi import APIRouter

from cqgateway import mappers
from cqgateway.deps import Context, CurrentUser
from cqgateway.schemas import MeOut

router = APIRouter(prefix="/api/v1", tags=["me"])


@router.get(
    "/me",
    response_model=MeOut,
    summary="The caller, own vehicles, own licence with points, followed vehicles and licences",
    description=(
        "`person` is null and every list is empty for a user who is not in the registry "
        "(R-USR-1). The licence carries its points dashboard (R-X-1): points in the current "
        "cycle, the cycle's end and whether the licence allows driving. Other people's data "
        "(a followed vehicle's owner) is masked (R-Q-4). Errors: 401 `UNAUTHENTICATED`, "
        "`TOKEN_INVALID`."
    ),
)
async def get_me(user: CurrentUser, ctx: Context) -> MeOut:
    response = await call(
        ctx.require_backends().query.GetMe,
        mappers.me_request(user.caller),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return mappers.me_out(user.user_id, response)
