"""The fake unit of work's read-only mode behaves as the real one's
(``OutboxUnitOfWork.reading``, tests/integration/test_db_reading.py): a use case that
only reads and is handed ``uows().reading()`` cannot record or commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cqcommon.unit_of_work import SnapshotUnitOfWork


@dataclass
class Store:
    outbox: list[Any] = field(default_factory=list)
    commits: int = 0

    def snapshot(self) -> Any:
        return None

    def restore(self, snapshot: Any) -> None:
        pass


async def test_a_read_only_fake_unit_of_work_refuses_to_record_or_commit() -> None:
    store = Store()
    async with SnapshotUnitOfWork[str](store).reading() as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            uow.record("event")
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
    assert store.outbox == [] and store.commits == 0


async def test_a_writing_fake_unit_of_work_still_commits() -> None:
    store = Store()
    async with SnapshotUnitOfWork[str](store) as uow:
        uow.record("event")
        await uow.commit()
    assert store.outbox == ["event"] and store.commits == 1
