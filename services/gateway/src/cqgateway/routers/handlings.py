"""Mini-program online handling (R-ADJ): start a handling of a violation, complete its
face-verification steps, submit it for the penalty decision, read it back.

Thin routes over the AdjudicationService: it decides eligibility (every failing rule is a
reason code of the one error table), runs the face adapters and issues the decision
atomically. A handling belongs to the user who started it: another user's handling answers
404 ``HANDLING_NOT_FOUND`` exactly like an unknown id (the service makes no difference either).
"""

from __future__ import annotations

from typing import Annotated

from cqcommon.grpc_client import call
from fastapi import APIRouter, Path

from cqgateway import mappers
from cqgateway.deps import Context, CurrentUser
from cqgateway.handling_codes import COMPLETE_ERRORS, GET_ERRORS, START_ERRORS, SUBMIT_ERRORS
from cqgateway.openapi import error_codes
from cqgateway.routers.violations import ID_PATTERN, PathId
from cqgateway.schemas import DecisionOut, HandlingOut, HandlingStepName

router = APIRouter(prefix="/api/v1", tags=["handlings"])

Step = Annotated[HandlingStepName, Path(description="`owner` or `handler`.")]
HandlingId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


@router.post(
    "/violations/{violation_id}/handlings",
    status_code=201,
    response_model=HandlingOut,
    summary="Start handling a violation online (face-verification steps)",
    description=(
        "R-ADJ-1..4: the handling's id and the face-verification steps it needs, in order: "
        "`handler`, or `owner` then `handler` (R-ADJ-4, another's vehicle with points: the "
        "owner consents by face first). Each step has the face adapter's `certify_id` and "
        "`url`. A violation the caller may not handle online answers 403 (409 when it is "
        "already handled, decided or paid) whose `details.reasons` lists **every** failing "
        "rule as `{code, zh, en}` and `details.route` names where to go instead (`counter`, "
        "`payment`); the error's own code is the first reason's. An unknown violation, or "
        "one the caller may not see, answers 404 (`NOT_FOUND`, `VIOLATION_NOT_FOUND`)."
    ),
    openapi_extra=error_codes(*START_ERRORS),
)
async def start_handling(violation_id: PathId, user: CurrentUser, ctx: Context) -> HandlingOut:
    handling = await call(
        ctx.require_backends().adjudication.StartHandling,
        mappers.start_handling_request(user.caller, violation_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return mappers.handling_out(handling)


@router.post(
    "/handlings/{handling_id}/verifications/{step}/complete",
    response_model=HandlingOut,
    summary="Ask the face adapter for a verification step's result",
    description=(
        "R-ADJ-8: asks the face adapter whether the step's verification passed and answers "
        "the handling with the step's new `status` (`pending` while the person has not "
        "finished, `passed` with `expires_at`, `failed`). The `handler` step waits for the "
        "`owner` step where there is one. Another user's handling answers 404 `HANDLING_NOT_FOUND` "
        "like an unknown one."
    ),
    openapi_extra=error_codes(*COMPLETE_ERRORS),
)
async def complete_verification(
    handling_id: HandlingId, step: Step, user: CurrentUser, ctx: Context
) -> HandlingOut:
    handling = await call(
        ctx.require_backends().adjudication.CompleteVerification,
        mappers.complete_verification_request(user.caller, handling_id, step),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return mappers.handling_out(handling)


@router.post(
    "/handlings/{handling_id}/submit",
    response_model=DecisionOut,
    summary="Apply a handling whose steps all passed; returns the decision",
    description=(
        "R-ADJ-5, R-ADJ-7: once every step passed (and has not expired), the points are "
        "added to the handler's licence within the limit, the penalty decision is issued and "
        "the violation becomes `handled_unpaid`, all at once. Submitting again answers the "
        "same decision (never a second one). Eligibility is checked again at this moment: a "
        "rule that fails now answers 403/409 with `details.reasons` as when starting. "
        "Another user's handling answers 404 `HANDLING_NOT_FOUND` like an unknown one."
    ),
    openapi_extra=error_codes(*SUBMIT_ERRORS),
)
async def submit_handling(handling_id: HandlingId, user: CurrentUser, ctx: Context) -> DecisionOut:
    handling = await call(
        ctx.require_backends().adjudication.SubmitHandling,
        mappers.submit_handling_request(user.caller, handling_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return mappers.submitted_decision_out(handling)


@router.get(
    "/handlings/{handling_id}",
    response_model=HandlingOut,
    summary="The state of a handling",
    description=(
        "The handling's state, steps and, once submitted, its decision. Another user's "
        "handling answers 404 `HANDLING_NOT_FOUND` like an unknown one."
    ),
    openapi_extra=error_codes(*GET_ERRORS),
)
async def get_handling(handling_id: HandlingId, user: CurrentUser, ctx: Context) -> HandlingOut:
    handling = await call(
        ctx.require_backends().adjudication.GetHandling,
        mappers.get_handling_request(user.caller, handling_id),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return mappers.handling_out(handling)
