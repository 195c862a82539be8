"""Keyset checkpoints of the nightly jobs' batches (R-JOB-*)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from cqcommon.checkpoints import batch_size, format_checkpoint, parse_checkpoint
from cqcommon.errors import DomainError


def test_r_job_a_checkpoint_round_trips_and_empty_means_from_the_start() -> None:
    at, row = datetime(2026, 11, 30, 14, 0, tzinfo=UTC), str(uuid.uuid4())
    assert parse_checkpoint(format_checkpoint(at, row)) == (at, row)
    assert parse_checkpoint("") is None


@pytest.mark.parametrize(
    "text",
    ["x", "2026-11-30T14:00:00|not-a-uuid", f"2026-11-30T14:00:00|{uuid.uuid4()}", "|"],
)
def test_r_job_a_malformed_checkpoint_is_a_validation_error(text: str) -> None:
    with pytest.raises(DomainError) as info:
        parse_checkpoint(text)  # the naive instant is refused too
    assert info.value.code == "VALIDATION_FAILED" and info.value.details == {"field": "checkpoint"}


def test_batch_size_defaults_and_caps() -> None:
    assert batch_size(0, default=100, maximum=500) == 100
    assert batch_size(50, default=100, maximum=500) == 50
    assert batch_size(10_000, default=100, maximum=500) == 500
