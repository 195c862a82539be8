"""What the runner's use cases need from the outside, as protocols: the services' job entry
points, the run records, the cluster-wide per-job lock and the progress display. Adapters
implement them on gRPC, PostgreSQL and the terminal; ``adapters.fakes`` in memory."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from cqjobs.domain.catalogue import JobSpec
from cqjobs.domain.runs import RunRecord


@dataclass(frozen=True)
class BatchRequest:
    """One ``RunJob`` call (cqtraffic.common.v1.RunJobRequest)."""

    job: str
    checkpoint: str
    batch_size: int
    night: date
    #: the runner's "now" when it was given one (--now); None: the service's own clock
    as_of: datetime | None = None


@dataclass(frozen=True)
class BatchResult:
    """One ``RunJob`` answer (cqtraffic.common.v1.RunJobResponse)."""

    items_done: int
    checkpoint: str
    done: bool
    errors: int = 0
    message: str = ""


class BatchCallError(Exception):
    """A ``RunJob`` call that failed; ``retryable`` when trying again may help (the service
    was unreachable, slow or failed inside), not when it refused (unknown job, not
    implemented, a bad checkpoint)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class JobServices(Protocol):
    async def run_batch(self, service: str, request: BatchRequest) -> BatchResult:
        """One bounded batch of ``request.job`` at ``service``; raises ``BatchCallError``."""
        ...


class RunStore(Protocol):
    async def latest(self, job: str, night: date) -> RunRecord | None:
        """The most recently started run of ``job`` on ``night``."""
        ...

    async def create(self, run: RunRecord) -> None: ...

    async def save(self, run: RunRecord) -> None:
        """Write the run's state, counts, checkpoint, message and end."""
        ...

    async def list_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        """Newest first."""
        ...


class Lease(Protocol):
    async def alive(self) -> bool:
        """Whether the lock is still held (its connection still answers)."""
        ...


class JobLocks(Protocol):
    def hold(self, job: str) -> AbstractAsyncContextManager[Lease | None]:
        """The job's cluster-wide lock for the block, or None when another runner holds it
        (never waits: the second runner skips the job)."""
        ...


@dataclass(frozen=True)
class ProgressLine:
    spec: JobSpec
    run: RunRecord
    #: items per second since this run started
    rate: float
    #: until the window's end (00:30); None for a forced run outside the window
    time_left: timedelta | None


class Progress(Protocol):
    def started(self, spec: JobSpec, run: RunRecord) -> None: ...

    def batch(self, line: ProgressLine) -> None: ...

    def finished(self, line: ProgressLine) -> None: ...

    def skipped(self, spec: JobSpec, why: str) -> None: ...
