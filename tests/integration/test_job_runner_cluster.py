"""The nightly job runner end to end on the in-process cluster (issue 11): ``python -m cqjobs
jobs run --force`` (its ``jobs_run``) works the payment and follow jobs through the real
services' RunJob, and staff read the runs back through ``GET /internal/v1/jobs`` (the
gateway → JobsService → the jobs schema)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from cqdev.testing import Cluster
from cqjobs.domain.catalogue import CATALOGUE, FOLLOW, PAYMENT
from cqjobs.entrypoints.cli import jobs_run

pytestmark = pytest.mark.integration

JOBS = [spec.name for spec in CATALOGUE if spec.service in (PAYMENT, FOLLOW)]


async def test_r_job_forced_run_of_the_payment_and_follow_jobs_read_back_by_staff(
    cluster: Cluster,
) -> None:
    begun = datetime.now(UTC)
    out = io.StringIO()
    code = await jobs_run(cluster.settings, jobs=JOBS, now=None, force=True, out=out)
    finished = datetime.now(UTC)
    text = out.getvalue()
    assert code == 0, text
    for name in JOBS:
        assert f"{name}: completed" in text, text
    assert "outside the window (forced)" in text or "left in the window" in text

    staff = await cluster.staff()
    r = await cluster.http.get("/internal/v1/jobs", params={"limit": 200}, headers=staff)
    assert r.status_code == 200, r.text
    runs = r.json()["runs"]
    latest: dict[str, dict[str, object]] = {}
    for run in runs:
        # this test's runs: started while it ran (other tests' runners, on the shared
        # database, record nights of their own clocks, years ahead)
        if begun <= datetime.fromisoformat(run["started_at"]) <= finished:
            latest.setdefault(run["job"], run)
    assert set(JOBS) <= set(latest)
    for name in JOBS:
        run = latest[name]
        assert run["state"] == "completed", run
        assert run["forced"] is True and run["ended_at"] is not None
        assert run["service"] in (PAYMENT, FOLLOW)
    starts = [run["started_at"] for run in runs]
    assert starts == sorted(starts, reverse=True)

    one = await cluster.http.get(
        "/internal/v1/jobs", params={"job": "expire_sms_follows"}, headers=staff
    )
    assert one.status_code == 200 and {r["job"] for r in one.json()["runs"]} == {
        "expire_sms_follows"
    }
    # run again without --force inside this test's clock is refused outside the window
    # (or skips what is completed inside it): never a second run of a completed job
    again = io.StringIO()
    code = await jobs_run(cluster.settings, jobs=JOBS, now="12:00", force=False, out=again)
    assert code == 2
