"""Mini-program violation queries (R-Q-1: only what the caller may see; 404 otherwise)."""

from __future__ import annotations

from typing import Annotated

from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.grpc_client import call
from fastapi import APIRouter, Query

from cqgateway import mappers
from cqgateway.deps import Context, CurrentUser
from cqgateway.schemas import ViolationListOut, ViolationStatusName

router = APIRouter(prefix="/api/v1", tags=["violations"])

Id = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get(
    "/violations",
    response_model=ViolationListOut,
    summary="Violations of one vehicle or licence the caller may see",
    description=(
        "Exactly one of `vehicle_id` and `licence_id` (else 422 `VALIDATION_FAILED`). "
        "A vehicle or licence the caller may not see answers 404 `NOT_FOUND` (R-Q-1)."
    ),
)
async def list_violations(
    user: CurrentUser,
    ctx: Context,
    vehicle_id: Id = None,
    licence_id: Id = None,
    status: Annotated[ViolationStatusName | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ViolationListOut:
    if (vehicle_id is None) == (licence_id is None):
        raise DomainError(
            VALIDATION_FAILED,
            details={
                "fields": [
                    {
                        "loc": ["query", "vehicle_id|licence_id"],
                        "type": "exactly_one",
                        "msg": "give exactly one of vehicle_id and licence_id",
                    }
                ]
            },
        )
    request = mappers.list_violations_request(
        user.caller,
        vehicle_id=vehicle_id,
        licence_id=licence_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    response = await call(
        ctx.require_backends().query.ListViolations, request, timeout_s=ctx.settings.grpc_deadline_s
    )
    return mappers.violation_list_out(response)
