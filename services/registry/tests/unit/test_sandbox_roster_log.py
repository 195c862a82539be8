"""R-SBX-1: the registry records completed sandbox roster loads (the gateway's /readyz asks
for one in sandbox mode); outside sandbox mode there is no roster to mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cqcommon.errors import DomainError
from cqregistry.service_layer.sandbox_roster import mark_roster_loaded, roster_loaded_at


class FakeSandboxRosterLog:
    def __init__(self) -> None:
        self.loads: list[tuple[datetime, int, int, int]] = []
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    async def add(self, *, records: int, violations: int, follows: int) -> datetime:
        self.now += timedelta(seconds=1)
        self.loads.append((self.now, records, violations, follows))
        return self.now

    async def last_loaded_at(self) -> datetime | None:
        return max((at for at, *_ in self.loads), default=None)


async def test_no_load_recorded_means_not_loaded_then_the_last_load_counts() -> None:
    log = FakeSandboxRosterLog()
    assert await roster_loaded_at(log=log) is None
    first = await mark_roster_loaded(
        log=log, sandbox_mode=True, records=59, violations=12, follows=3
    )
    assert await roster_loaded_at(log=log) == first
    second = await mark_roster_loaded(
        log=log, sandbox_mode=True, records=59, violations=12, follows=3
    )
    assert second > first and await roster_loaded_at(log=log) == second


async def test_marking_outside_sandbox_mode_is_refused() -> None:
    log = FakeSandboxRosterLog()
    with pytest.raises(DomainError) as refused:
        await mark_roster_loaded(log=log, sandbox_mode=False, records=1, violations=0, follows=0)
    assert refused.value.code == "SANDBOX_ONLY"
    assert log.loads == []
