"""Mini-program violation queries (R-Q-1: only what the caller may see; 404 otherwise):
the list of a vehicle's or licence's violations, proof-based lookups, and one violation's
detail with whether the caller may handle it online (R-Q-3)."""

from __future__ import annotations

from typing import Annotated

from cqcommon.errors import (
    INVALID_CURSOR,
    INVALID_FILE_NO,
    INVALID_ID_NUMBER,
    INVALID_PLATE_NUMBER,
    INVALID_PLATE_TYPE,
    INVALID_VIN,
    NOT_FOUND,
    RATE_LIMITED,
    VALIDATION_FAILED,
    DomainError,
)
from cqcommon.grpc_client import call
from fastapi import APIRouter, Path, Query, Response

from cqgateway import mappers
from cqgateway.deps import Context, CurrentUser, JsonBody
from cqgateway.openapi import error_codes
from cqgateway.responses import json_of
from cqgateway.schemas import (
    LookupLicenceBody,
    LookupOut,
    LookupVehicleBody,
    ViolationListOut,
    ViolationOut,
    ViolationStatusName,
)

router = APIRouter(prefix="/api/v1", tags=["violations"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
Id = Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)]
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


@router.get(
    "/violations",
    response_model=ViolationListOut,
    summary="Violations of one vehicle or licence the caller may see",
    description=(
        "Exactly one of `vehicle_id` and `licence_id` (else 422 `VALIDATION_FAILED`). "
        "A vehicle or licence the caller may not see answers 404 `NOT_FOUND` (R-Q-1)."
    ),
    openapi_extra=error_codes(NOT_FOUND, INVALID_CURSOR),
)
async def list_violations(
    user: CurrentUser,
    ctx: Context,
    vehicle_id: Id = None,
    licence_id: Id = None,
    status: Annotated[ViolationStatusName | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
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
    return json_of(mappers.violation_list_out(response))


@router.post(
    "/violations/lookup/vehicle",
    response_model=LookupOut,
    dependencies=[JsonBody],
    summary="Look up a vehicle's violations by proof (plate + VIN)",
    description=(
        "R-Q-1: plate type, plate number and the VIN's last 6 characters (or the full 17) prove "
        "the caller may see the vehicle; the answer is the vehicle (masked, R-Q-4) with the "
        "first page of its violations, and `next_cursor` continues with "
        "`GET /api/v1/violations?vehicle_id=…`. Errors: 400 `INVALID_PLATE_NUMBER`, "
        "`INVALID_VIN`; 422 `VALIDATION_FAILED` (missing or unknown fields, unknown "
        "`plate_type`); 415 `UNSUPPORTED_MEDIA_TYPE`; 404 `NOT_FOUND` when no vehicle matches "
        "the proof (a wrong VIN answers the same); 429 `RATE_LIMITED` past the per-user limit, "
        "with `Retry-After`."
    ),
    openapi_extra=error_codes(
        INVALID_PLATE_NUMBER, INVALID_PLATE_TYPE, INVALID_VIN, NOT_FOUND, RATE_LIMITED
    ),
)
async def lookup_vehicle(body: LookupVehicleBody, user: CurrentUser, ctx: Context) -> LookupOut:
    request = mappers.lookup_vehicle_request(body, user.caller)
    response = await call(
        ctx.require_backends().query.LookupVehicle, request, timeout_s=ctx.settings.grpc_deadline_s
    )
    return mappers.lookup_out(response)


@router.post(
    "/violations/lookup/licence",
    response_model=LookupOut,
    dependencies=[JsonBody],
    summary="Look up a licence's violations by proof (name + licence no + file no)",
    description=(
        "R-Q-1: the holder's name, the licence number (18-char ID number) and the 12-digit "
        "file number prove the caller may see the licence; the answer is the licence (masked, "
        "R-Q-4, with its points, R-X-1) and the first page of its violations; `next_cursor` "
        "continues with `GET /api/v1/violations?licence_id=…`. Errors: 400 "
        "`INVALID_ID_NUMBER` (licence_no), `INVALID_FILE_NO`; 422 `VALIDATION_FAILED`; "
        "415 `UNSUPPORTED_MEDIA_TYPE`; 404 `NOT_FOUND` when nothing matches (a wrong name or "
        "file number answers the same); 429 `RATE_LIMITED` past the per-user limit, with "
        "`Retry-After`."
    ),
    openapi_extra=error_codes(INVALID_ID_NUMBER, INVALID_FILE_NO, NOT_FOUND, RATE_LIMITED),
)
async def lookup_licence(body: LookupLicenceBody, user: CurrentUser, ctx: Context) -> LookupOut:
    request = mappers.lookup_licence_request(body, user.caller)
    response = await call(
        ctx.require_backends().query.LookupLicence, request, timeout_s=ctx.settings.grpc_deadline_s
    )
    return mappers.lookup_out(response)


@router.get(
    "/violations/{violation_id}",
    response_model=ViolationOut,
    summary="One violation, with the amount due and whether it can be handled online",
    description=(
        "R-Q-3: time, place, code, fine, points, status, decision number once decided, "
        "`amount_due_fen` (fine + late fee, today in Asia/Shanghai) and `online_handling`: "
        "`availability` `allowed` / `refused` (with `reason_code` and the reason in Chinese and "
        "English, and the `route` to take) / `unknown` (eligibility could not be determined "
        "right now; `allowed` is null). Errors: 404 `NOT_FOUND` for an unknown violation or "
        "one the caller may not see (R-Q-1); 422 `VALIDATION_FAILED` for a malformed id."
    ),
    openapi_extra=error_codes(NOT_FOUND),
)
async def get_violation(violation_id: PathId, user: CurrentUser, ctx: Context) -> Response:
    request = mappers.get_violation_request(user.caller, violation_id)
    response = await call(
        ctx.require_backends().query.GetViolation, request, timeout_s=ctx.settings.grpc_deadline_s
    )
    return json_of(mappers.violation_out(response))
