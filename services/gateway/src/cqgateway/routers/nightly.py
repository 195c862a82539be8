"""The nightly jobs' counter endpoints (issue 11, ``/internal/v1``): the job runner's run
records (R-JOB-*), a day's reconciliation (R-JOB-2) and a decision's printable notice
(R-JOB-3, R-ADJ-7).

Staff only, every call audited (``cqgateway.audit``) like the other counter calls: the
notice with the subject ``decision:<decision_no>``, the reconciliation with
``reconciliation:<date>``. The run records come from the job runner's JobsService (nobody
reads its schema but the runner), the reconciliation from PaymentService, the notice from
AdjudicationService.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from cqcommon.errors import (
    DECISION_NOTICE_NOT_FOUND,
    HANDLING_IDENTITY_UNAVAILABLE,
    INVALID_DECISION_NO,
    UNKNOWN_JOB,
    VALIDATION_FAILED,
    DomainError,
)
from cqcommon.grpc_client import call
from cqcommon.identifiers import parse_decision_no
from cqcommon.protomap import date_from_proto, date_to_proto, timestamp_from_proto
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.jobs.v1 import jobs_pb2 as jobs
from cqtraffic.payment.v1 import payment_pb2 as pay
from fastapi import APIRouter, Path, Query, Request, Response

from cqgateway import mappers
from cqgateway.audit import audit_context
from cqgateway.deps import Context, StaffUser
from cqgateway.openapi import error_codes
from cqgateway.responses import json_of
from cqgateway.routers.payments import DECISION_NO_PATTERN
from cqgateway.schemas import (
    JobRunListOut,
    JobRunOut,
    ReconciliationMismatchOut,
    ReconciliationOut,
)

router = APIRouter(prefix="/internal/v1", tags=["counter"])

JOB_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: The format is documented (pattern) but checked in the route, so a day that does not
#: exist (2026-02-30) answers like a malformed one.
Day = Annotated[
    str,
    Path(
        description="An Asia/Shanghai calendar day, `YYYY-MM-DD`.",
        json_schema_extra={"pattern": DATE_PATTERN, "format": "date"},
    ),
]
NoticeDecisionNo = Annotated[
    str,
    Path(
        description="16 digits (the authority's division code and a serial).",
        json_schema_extra={"pattern": DECISION_NO_PATTERN},
    ),
]

PDF_CONTENT = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


def _run_out(run: jobs.JobRun) -> JobRunOut:
    return JobRunOut(
        run_id=run.run_id,
        job=run.job,
        service=run.service,
        night=date_from_proto(run.night),
        started_at=timestamp_from_proto(run.started_at),
        ended_at=timestamp_from_proto(run.ended_at),
        state=run.state,
        items_done=run.items_done,
        errors=run.errors,
        batches=run.batches,
        checkpoint=run.checkpoint,
        message=run.message,
        forced=run.forced,
        resumed_from=run.resumed_from or None,
    )


@router.get(
    "/jobs",
    response_model=JobRunListOut,
    summary="The nightly jobs' run records (R-JOB-*)",
    description=(
        "Any staff role. Every run of every nightly job (22:00–00:30 Asia/Shanghai), newest "
        "first: its night, start and end, state (`running`, `completed`, `paused`, "
        "`failed`), items done, errors, batches, last checkpoint and a short note. `job` "
        "keeps one job's runs (400 `UNKNOWN_JOB` for a name the runner does not have); "
        "`limit` 1..200, default 50."
    ),
    openapi_extra=error_codes(UNKNOWN_JOB),
)
async def list_job_runs(
    staff: StaffUser,
    ctx: Context,
    job: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=JOB_PATTERN,
            description="One job, e.g. `expire_sms_follows`.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many runs.")] = 50,
) -> Response:
    answer = await call(
        ctx.require_backends().jobs.ListRuns,
        jobs.ListRunsRequest(caller=staff.caller, job=job or "", limit=limit),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    return json_of(JobRunListOut(runs=[_run_out(run) for run in answer.runs]))


@router.get(
    "/reconciliation/{date}",
    response_model=ReconciliationOut,
    summary="A day's reconciliation mismatches (R-JOB-2)",
    description=(
        "Any staff role. The nightly job compares a day's paid Alipay payments with the "
        "provider's statement of that day (the night after it) and lists the mismatches: "
        "`ours_only`, `theirs_only`, `amount_differs`. `reconciled` is false while the day "
        "has not been reconciled (no statement yet): then the list is empty for that reason, "
        "not because everything matched. A day that is not `YYYY-MM-DD` or does not exist "
        "answers 422 `VALIDATION_FAILED` (field `date`). Audited with the subject "
        "`reconciliation:<date>`."
    ),
)
async def get_reconciliation(
    staff: StaffUser, request: Request, ctx: Context, date: Day
) -> Response:
    day = _parse_day(date)
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("reconciliation", day.isoformat())
    answer = await call(
        ctx.require_backends().payment.GetReconciliation,
        pay.GetReconciliationRequest(caller=staff.caller, date=date_to_proto(day)),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    out = ReconciliationOut(
        day=day,
        reconciled=answer.reconciled,
        reconciled_at=timestamp_from_proto(answer.reconciled_at),
        statement_lines=answer.statement_lines,
        our_payments=answer.our_payments,
        mismatches=[
            ReconciliationMismatchOut(
                kind=m.kind,
                out_trade_no=m.out_trade_no,
                our_amount_fen=m.our_amount_fen if m.kind != "theirs_only" else None,
                their_amount_fen=m.their_amount_fen if m.kind != "ours_only" else None,
            )
            for m in answer.mismatches
        ],
    )
    return json_of(out)


def _parse_day(text: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError(VALIDATION_FAILED, details={"field": "date"}) from None


@router.get(
    "/decisions/{decision_no}/notice.pdf",
    response_class=Response,
    responses={
        200: {
            "description": (
                "R-ADJ-7: the decision notice (处理通知书) as a PDF, sent as an attachment "
                "`notice-<decision_no>.pdf`; made by the nightly job (R-JOB-3), or at once "
                "when the job has not come by yet."
            ),
            "content": PDF_CONTENT,
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="notice-<decision_no>.pdf"',
                    "schema": {"type": "string"},
                }
            },
        }
    },
    summary="The printable decision notice (PDF, R-ADJ-7)",
    description=(
        "Any staff role. 400 `INVALID_DECISION_NO` unless 16 digits; 404 "
        "`DECISION_NOTICE_NOT_FOUND` for a number no decision here carries; 503 "
        "`HANDLING_IDENTITY_UNAVAILABLE` while the party's registry record has not arrived. "
        "Audited with the subject `decision:<decision_no>`."
    ),
    openapi_extra=error_codes(
        INVALID_DECISION_NO, DECISION_NOTICE_NOT_FOUND, HANDLING_IDENTITY_UNAVAILABLE
    ),
)
async def get_decision_notice(
    decision_no: NoticeDecisionNo, staff: StaffUser, request: Request, ctx: Context
) -> Response:
    number = parse_decision_no(decision_no)
    audit = audit_context(request)
    if audit is not None:
        audit.add_subject("decision", number)
    notice = await call(
        ctx.require_backends().adjudication.GetDecisionNotice,
        adj.GetDecisionNoticeRequest(caller=staff.caller, decision_no=number),
        timeout_s=ctx.settings.grpc_deadline_s,
    )
    filename = mappers.attachment_filename(notice.filename, f"notice-{number}.pdf")
    return Response(
        content=notice.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
