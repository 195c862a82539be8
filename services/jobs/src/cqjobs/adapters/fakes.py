"""In-memory stand-ins for the runner's ports (unit tests, drills): a run store, locks that
a test can hold "from another runner", and services answering from a script."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date

from cqjobs.domain.catalogue import JobSpec
from cqjobs.domain.runs import RunRecord
from cqjobs.ports import BatchRequest, BatchResult, ProgressLine


class InMemoryRunStore:
    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self._order: list[str] = []
        self.saves = 0

    async def latest(self, job: str, night: date) -> RunRecord | None:
        found = [self.runs[r] for r in self._order if self.runs[r].job == job]
        found = [r for r in found if r.night == night]
        return found[-1] if found else None

    async def create(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run
        self._order.append(run.run_id)

    async def save(self, run: RunRecord) -> None:
        assert run.run_id in self.runs, "save of a run never created"
        self.runs[run.run_id] = run
        self.saves += 1

    async def list_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        newest = [self.runs[r] for r in reversed(self._order)]
        return [r for r in newest if job is None or r.job == job][:limit]

    def of(self, job: str) -> list[RunRecord]:
        """Every run of ``job``, oldest first."""
        return [self.runs[r] for r in self._order if self.runs[r].job == job]


class _Lease:
    def __init__(self, locks: InMemoryLocks, job: str) -> None:
        self.locks = locks
        self.job = job

    async def alive(self) -> bool:
        return self.job not in self.locks.lost


class InMemoryLocks:
    """``held_elsewhere``: jobs another runner holds; ``lost``: leases whose connection died."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.held_elsewhere: set[str] = set()
        self.lost: set[str] = set()

    @contextlib.asynccontextmanager
    async def hold(self, job: str) -> AsyncIterator[_Lease | None]:
        if job in self.held or job in self.held_elsewhere:
            yield None
            return
        self.held.add(job)
        try:
            yield _Lease(self, job)
        finally:
            self.held.discard(job)


Script = Callable[[str, BatchRequest], BatchResult]


@dataclass
class ScriptedServices:
    """Answers ``run_batch`` with ``script(service, request)`` (which may raise
    ``BatchCallError``); records every request."""

    script: Script
    calls: list[tuple[str, BatchRequest]] = field(default_factory=list)

    async def run_batch(self, service: str, request: BatchRequest) -> BatchResult:
        self.calls.append((service, request))
        return self.script(service, request)


@dataclass
class RecordingProgress:
    events: list[tuple[str, str, object]] = field(default_factory=list)

    def started(self, spec: JobSpec, run: RunRecord) -> None:
        self.events.append(("started", spec.name, run))

    def batch(self, line: ProgressLine) -> None:
        self.events.append(("batch", line.spec.name, line))

    def finished(self, line: ProgressLine) -> None:
        self.events.append(("finished", line.spec.name, line))

    def skipped(self, spec: JobSpec, why: str) -> None:
        self.events.append(("skipped", spec.name, why))
