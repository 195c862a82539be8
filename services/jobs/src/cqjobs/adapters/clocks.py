"""The runner's clock when given ``--now``: it starts at that instant and runs on from there
(now = given + time elapsed), so a drill at 14:00 can be a night at 23:59 that reaches
00:30 and pauses like the real one."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta


class StartedAtClock:
    def __init__(self, start: datetime, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("the runner's clock needs an aware start instant")
        self.start = start
        self.monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic() - self._origin)
