"""The job runner's metrics (``cqcommon.metrics``).

``MetricsProgress`` wraps the runner's ``Progress`` port: it counts runs by outcome and the
items each batch handled, as they happen. ``jobs_samplers`` reads the run records for when
each job last completed and last failed: a run started by another process (the CronJob's
``jobs run``, which lives too briefly to be scraped) is seen there too, which is what the
"not succeeded tonight" alert needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from cqcommon.db import Database
from cqcommon.metrics import (
    JOB_ITEMS,
    JOB_LAST_FAILURE,
    JOB_LAST_SUCCESS,
    JOB_RUNS,
    SampleFn,
)

from cqjobs.domain.catalogue import JOB_NAMES, JobSpec
from cqjobs.domain.runs import RunRecord
from cqjobs.ports import Progress, ProgressLine


class MetricsProgress:
    """A ``Progress`` that counts, then hands every call on to ``inner``."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        #: items already counted per run (a line carries the run's running total)
        self._counted: dict[str, int] = {}

    def _count_items(self, run: RunRecord) -> None:
        before = self._counted.get(run.run_id, 0)
        if run.items_done > before:
            JOB_ITEMS.labels(run.job).inc(run.items_done - before)
        self._counted[run.run_id] = max(before, run.items_done)

    def started(self, spec: JobSpec, run: RunRecord) -> None:
        # a resumed run starts from its predecessor's total: only what it adds is counted
        self._counted[run.run_id] = run.items_done
        self.inner.started(spec, run)

    def batch(self, line: ProgressLine) -> None:
        self._count_items(line.run)
        self.inner.batch(line)

    def finished(self, line: ProgressLine) -> None:
        self._count_items(line.run)
        self._counted.pop(line.run.run_id, None)
        JOB_RUNS.labels(line.spec.name, line.run.state.value).inc()
        self.inner.finished(line)

    def skipped(self, spec: JobSpec, why: str) -> None:
        JOB_RUNS.labels(spec.name, "skipped").inc()
        self.inner.skipped(spec, why)


def jobs_samplers(db: Database) -> Mapping[str, SampleFn]:
    async def last_runs() -> None:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT job,"
                " EXTRACT(EPOCH FROM max(ended_at) FILTER (WHERE state = 'completed'))::float8,"
                " EXTRACT(EPOCH FROM max(ended_at) FILTER (WHERE state = 'failed'))::float8"
                " FROM runs GROUP BY job"
            )
            rows = {str(job): (ok, failed) for job, ok, failed in await cur.fetchall()}
        for job in JOB_NAMES:
            ok, failed = rows.get(job, (None, None))
            # 0 = never: the alert on "no success for a day" fires for a job never run
            JOB_LAST_SUCCESS.labels(job).set(float(ok or 0.0))
            JOB_LAST_FAILURE.labels(job).set(float(failed or 0.0))

    return {"job_runs": last_runs}
