"""R-PAY-6: the nightly maintenance window, 22:00–00:30 Asia/Shanghai.

The payment service refuses new payments inside it (HTTP 503 with ``Retry-After`` to
the window's end) and the nightly job runner (R-JOB-*) runs inside it; both ask these
pure functions about an aware instant from their injectable clock (``cqcommon.clock``),
so tests can pin the boundaries.

The window is half-open, ``start <= local time < end``: 22:00:00 is inside, 00:30:00 is
outside again. It may cross midnight (the default does), in which case it is the union
of ``[start, 24:00)`` and ``[00:00, end)`` of every local day. The times are wall-clock
times in Asia/Shanghai, which has no daylight-saving shift, so a window is always the
same length. A ``MaintenanceWindow`` other than the default can come from settings
(``MaintenanceWindow.parse("22:00-00:30")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cqcommon.clock import SHANGHAI

#: Local time the window opens (inclusive).
WINDOW_START = time(22, 0)
#: Local time the window closes (exclusive): payments are accepted again from 00:30:00.
WINDOW_END = time(0, 30)

_ONE_SECOND_US = 1_000_000


def _local(now: datetime) -> datetime:
    # A naive datetime would be read in the server's zone: a UTC server would open the
    # window eight hours late, so it is refused rather than guessed.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("maintenance window checks need a timezone-aware datetime")
    return now.astimezone(SHANGHAI)


@dataclass(frozen=True)
class MaintenanceWindow:
    """A daily window ``start <= local time < end`` in Asia/Shanghai (R-PAY-6)."""

    start: time = WINDOW_START
    end: time = WINDOW_END

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are Asia/Shanghai wall-clock times, without a zone")
        if self.start == self.end:
            raise ValueError("a maintenance window needs a start different from its end")

    @classmethod
    def parse(cls, text: str) -> MaintenanceWindow:
        """``"22:00-00:30"`` (``HH:MM`` or ``HH:MM:SS``) → a window; for settings."""
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"maintenance window {text!r} is not START-END, e.g. 22:00-00:30")
        return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def contains(self, now: datetime) -> bool:
        """Whether the instant ``now`` (aware) falls inside the window."""
        local = _local(now).time()
        if self.crosses_midnight:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def ends_at(self, now: datetime) -> datetime:
        """The next window end strictly after ``now``, as an Asia/Shanghai datetime.

        Inside the window that is the end of this window (00:30 tonight or this
        morning); outside it, the end of the next one.
        """
        local = _local(now)
        end = datetime.combine(local.date(), self.end, tzinfo=SHANGHAI)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=SHANGHAI)
        return end

    def retry_after_s(self, now: datetime) -> int:
        """Whole seconds until the window ends, rounded up (so a client retrying then is
        never early); at least 1 inside the window, 0 outside it."""
        if not self.contains(now):
            return 0
        # integer microseconds: a float division could round 1.000001 s down to 1
        remaining_us = (self.ends_at(now) - now) // timedelta(microseconds=1)
        return max(1, -(-remaining_us // _ONE_SECOND_US))


#: The window of R-PAY-6, 22:00–00:30.
DEFAULT_WINDOW = MaintenanceWindow()


def in_maintenance_window(now: datetime, window: MaintenanceWindow = DEFAULT_WINDOW) -> bool:
    """Whether new payments are refused at ``now`` (R-PAY-6): 22:00 <= local < 00:30."""
    return window.contains(now)


def window_ends_at(now: datetime, window: MaintenanceWindow = DEFAULT_WINDOW) -> datetime:
    """The next 00:30 Asia/Shanghai after ``now`` (the end of the window while inside)."""
    return window.ends_at(now)


def retry_after_s(now: datetime, window: MaintenanceWindow = DEFAULT_WINDOW) -> int:
    """The ``Retry-After`` seconds for a payment refused at ``now``: until 00:30, rounded
    up, at least 1 inside the window; 0 outside it."""
    return window.retry_after_s(now)
