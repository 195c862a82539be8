"""The nightly jobs' counter endpoints (issue 11) against ``FakeServices``: the run records
(R-JOB-*, JobsService.ListRuns), a day's reconciliation (R-JOB-2, PaymentService) and the
decision notice PDF (R-ADJ-7, AdjudicationService): staff only, audited, the HTTP ↔ gRPC
mapping and every refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from cqcommon.errors import DECISION_NOTICE_NOT_FOUND, FORBIDDEN, UNKNOWN_JOB, DomainError
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqdev.testing import error_body, traced
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.jobs.v1 import jobs_pb2 as jobs
from cqtraffic.payment.v1 import payment_pb2 as pay

pytestmark = pytest.mark.integration

STARTED = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 1, 14, 5, tzinfo=UTC)


def a_run(job: str, state: str = "completed") -> jobs.JobRun:
    return jobs.JobRun(
        run_id=f"run-{job}",
        job=job,
        service="follow",
        night=date_to_proto(date(2026, 11, 1)),
        started_at=timestamp_to_proto(STARTED),
        ended_at=timestamp_to_proto(ENDED if state != "running" else None),
        state=state,
        items_done=1200,
        errors=1,
        batches=3,
        checkpoint="1200",
        message="",
    )


async def test_r_job_runs_newest_first_for_staff(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: Any
) -> None:
    fake.script(
        "ListRuns",
        lambda req: jobs.ListRunsResponse(
            runs=[a_run("expire_follow_requests", "running"), a_run("expire_sms_follows")]
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get("/internal/v1/jobs", headers=headers)
    assert r.status_code == 200, r.text
    runs = r.json()["runs"]
    assert [run["job"] for run in runs] == ["expire_follow_requests", "expire_sms_follows"]
    assert runs[0]["state"] == "running" and runs[0]["ended_at"] is None
    assert runs[1] == {
        "run_id": "run-expire_sms_follows",
        "job": "expire_sms_follows",
        "service": "follow",
        "night": "2026-11-01",
        "started_at": "2026-11-01T14:00:00Z",
        "ended_at": "2026-11-01T14:05:00Z",
        "state": "completed",
        "items_done": 1200,
        "errors": 1,
        "batches": 3,
        "checkpoint": "1200",
        "message": "",
        "forced": False,
        "resumed_from": None,
    }
    (request,) = fake.requests["ListRuns"]
    assert request.caller.staff_id and request.job == "" and request.limit == 50
    row = await audit_row(trace_id)
    assert row["path"] == "/internal/v1/jobs" and row["status_code"] == 200


async def test_r_job_runs_of_one_job_and_an_unknown_one(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    def answer(req: jobs.ListRunsRequest) -> jobs.ListRunsResponse:
        if req.job != "expire_sms_follows":
            raise DomainError(UNKNOWN_JOB)
        return jobs.ListRunsResponse(runs=[a_run(req.job)])

    fake.script("ListRuns", answer)
    r = await client.get(
        "/internal/v1/jobs", params={"job": "expire_sms_follows", "limit": 5}, headers=clerk_headers
    )
    assert r.status_code == 200 and fake.requests["ListRuns"][0].limit == 5
    r = await client.get("/internal/v1/jobs", params={"job": "nope"}, headers=clerk_headers)
    assert r.status_code == 400 and error_body(r)["code"] == "UNKNOWN_JOB"
    r = await client.get("/internal/v1/jobs", params={"limit": 0}, headers=clerk_headers)
    assert r.status_code == 422


async def test_nightly_endpoints_are_for_staff_only(
    client: httpx.AsyncClient, fake: Any, user_headers: Any
) -> None:
    user = await user_headers()
    for path in (
        "/internal/v1/jobs",
        "/internal/v1/reconciliation/2026-11-01",
        "/internal/v1/decisions/5001002026000001/notice.pdf",
    ):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers=user)).status_code in (401, 403), path
    assert "ListRuns" not in fake.requests and "GetReconciliation" not in fake.requests


async def test_r_job_2_reconciliation_of_a_day(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: Any
) -> None:
    fake.script(
        "GetReconciliation",
        lambda req: pay.GetReconciliationResponse(
            reconciled=True,
            reconciled_at=timestamp_to_proto(ENDED),
            statement_lines=3,
            our_payments=3,
            mismatches=[
                pay.ReconciliationMismatch(kind="ours_only", out_trade_no="T1", our_amount_fen=200),
                pay.ReconciliationMismatch(
                    kind="theirs_only", out_trade_no="T2", their_amount_fen=300
                ),
                pay.ReconciliationMismatch(
                    kind="amount_differs", out_trade_no="T3", our_amount_fen=1, their_amount_fen=2
                ),
            ],
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get("/internal/v1/reconciliation/2026-10-31", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["day"] == "2026-10-31" and body["reconciled"] is True
    assert body["statement_lines"] == 3 and body["our_payments"] == 3
    assert body["mismatches"] == [
        {"kind": "ours_only", "out_trade_no": "T1", "our_amount_fen": 200, "their_amount_fen": None},
        {"kind": "theirs_only", "out_trade_no": "T2", "our_amount_fen": None, "their_amount_fen": 300},
        {"kind": "amount_differs", "out_trade_no": "T3", "our_amount_fen": 1, "their_amount_fen": 2},
    ]  # fmt: skip
    day = fake.requests["GetReconciliation"][0].date
    assert (day.year, day.month, day.day) == (2026, 10, 31)
    row = await audit_row(trace_id)
    assert "reconciliation:2026-10-31" in row["subjects"]


async def test_r_job_2_reconciliation_refuses_a_day_that_does_not_exist(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    for day in ("2026-02-30", "2026-13-01", "20261101", "yesterday"):
        r = await client.get(f"/internal/v1/reconciliation/{day}", headers=clerk_headers)
        assert r.status_code == 422, (day, r.text)
        assert error_body(r)["code"] == "VALIDATION_FAILED"
    assert "GetReconciliation" not in fake.requests


async def test_r_adj_7_decision_notice_pdf(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: Any
) -> None:
    fake.script(
        "GetDecisionNotice",
        lambda req: adj.DecisionNotice(
            decision_no=req.decision_no,
            filename=f"notice-{req.decision_no}.pdf",
            content_type="application/pdf",
            content=b"%PDF-1.4 notice",
        ),
    )
    headers, trace_id = traced(clerk_headers)
    r = await client.get("/internal/v1/decisions/5001002026000001/notice.pdf", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == 'attachment; filename="notice-5001002026000001.pdf"'
    assert r.content == b"%PDF-1.4 notice"
    assert fake.requests["GetDecisionNotice"][0].caller.staff_id
    row = await audit_row(trace_id)
    assert "decision:5001002026000001" in row["subjects"]


async def test_r_adj_7_decision_notice_refusals(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    r = await client.get("/internal/v1/decisions/12345/notice.pdf", headers=clerk_headers)
    assert r.status_code == 400 and error_body(r)["code"] == "INVALID_DECISION_NO"

    def missing(req: adj.GetDecisionNoticeRequest) -> adj.DecisionNotice:
        raise DomainError(DECISION_NOTICE_NOT_FOUND)

    fake.script("GetDecisionNotice", missing)
    r = await client.get(
        "/internal/v1/decisions/5001002026000001/notice.pdf", headers=clerk_headers
    )
    assert r.status_code == 404 and error_body(r)["code"] == "DECISION_NOTICE_NOT_FOUND"

    def forbidden(req: adj.GetDecisionNoticeRequest) -> adj.DecisionNotice:
        raise DomainError(FORBIDDEN)

    fake.script("GetDecisionNotice", forbidden)
    r = await client.get(
        "/internal/v1/decisions/5001002026000001/notice.pdf", headers=clerk_headers
    )
    assert r.status_code == 403
