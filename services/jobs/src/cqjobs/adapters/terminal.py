"""Progress on the command line, one line per job event: items done, rate (items/s) and
time left in the window; batch lines at most every ``every_s`` seconds per job (a night of
a million items is thousands of batches)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from cqjobs.domain.catalogue import JobSpec
from cqjobs.domain.runs import RunRecord
from cqjobs.ports import ProgressLine


def _left(left: timedelta | None) -> str:
    if left is None:
        return "outside the window (forced)"
    seconds = int(left.total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d} left in the window"


def describe(line: ProgressLine) -> str:
    run = line.run
    text = (
        f"{run.items_done} items, {line.rate:.1f} items/s, {run.batches} batches,"
        f" {run.errors} errors, {_left(line.time_left)}"
    )
    return text


class TerminalProgress:
    def __init__(
        self,
        out: TextIO | None = None,
        *,
        every_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stdout
        self.every_s = every_s
        self.monotonic = monotonic
        self._last: dict[str, float] = {}

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def started(self, spec: JobSpec, run: RunRecord) -> None:
        self._last[spec.name] = self.monotonic()
        where = f"from checkpoint {run.checkpoint!r}" if run.checkpoint else "from the start"
        self._print(
            f"{spec.name} [{spec.service}, {spec.rule}]: started {where} (run {run.run_id})"
        )

    def batch(self, line: ProgressLine) -> None:
        now = self.monotonic()
        if now - self._last.get(line.spec.name, 0.0) < self.every_s:
            return
        self._last[line.spec.name] = now
        self._print(f"{line.spec.name}: {describe(line)}")

    def finished(self, line: ProgressLine) -> None:
        run = line.run
        note = f" ({run.message})" if run.message else ""
        self._print(f"{line.spec.name}: {run.state.value}, {describe(line)}{note}")

    def skipped(self, spec: JobSpec, why: str) -> None:
        self._print(f"{spec.name}: skipped, {why}")
