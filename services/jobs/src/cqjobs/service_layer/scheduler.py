"""Use case: the scheduler (``python -m cqjobs scheduler``, and inside ``run``): wait for
22:00 Asia/Shanghai, run every job, wait for the next night.

Started inside the window it runs at once (a scheduler restarted at 23:00 does that
night's work; jobs already completed this night are skipped, unfinished ones resume).
It sleeps in slices of at most ``max_sleep_s`` and looks at the clock again after each, so
a clock that jumps (a suspended laptop, NTP) never makes it miss a night.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from cqcommon.clock import Clock
from cqcommon.maintenance import DEFAULT_WINDOW, MaintenanceWindow

from cqjobs.domain.runs import next_window_start
from cqjobs.service_layer.runner import JobRunner, NightReport

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        runner: JobRunner,
        clock: Clock,
        *,
        window: MaintenanceWindow = DEFAULT_WINDOW,
        max_sleep_s: float = 60.0,
        on_night: Callable[[NightReport], None] | None = None,
    ) -> None:
        self.runner = runner
        self.clock = clock
        self.window = window
        self.max_sleep_s = max_sleep_s
        self.on_night = on_night

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set."""
        while not stop.is_set():
            now = self.clock.now()
            if self.window.contains(now):
                try:
                    report = await self.runner.run()
                except Exception:  # a broken night must not end the scheduler
                    log.exception("the night's run failed; trying again next night")
                else:
                    log.info(
                        "night %s: %s",
                        report.night,
                        ", ".join(f"{o.job} {o.outcome}" for o in report.outcomes),
                    )
                    if self.on_night is not None:
                        self.on_night(report)
                await self._sleep_until_next_start(stop)
            else:
                await self._sleep_until_next_start(stop)

    async def _sleep_until_next_start(self, stop: asyncio.Event) -> None:
        target = next_window_start(self.clock.now(), self.window)
        while not stop.is_set():
            left = (target - self.clock.now()).total_seconds()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(left, self.max_sleep_s))
