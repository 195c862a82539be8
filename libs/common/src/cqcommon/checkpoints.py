"""Keyset checkpoints of the nightly jobs' batches (R-JOB-*): a batch works the rows after
``(instant, uuid)`` in that order and hands back the last one it worked as
``<instant ISO>|<uuid>``, which the job runner passes to the next batch. Pure code."""

from __future__ import annotations

import uuid
from datetime import datetime

from cqcommon.errors import VALIDATION_FAILED, DomainError


def parse_checkpoint(text: str) -> tuple[datetime, str] | None:
    """``<aware instant ISO>|<uuid>``, or None for an empty one (from the start); anything
    else is 400 ``VALIDATION_FAILED`` on the field ``checkpoint``."""
    if not text:
        return None
    at, sep, row_id = text.partition("|")
    try:
        if not sep:
            raise ValueError(text)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError(text)
        return when, str(uuid.UUID(row_id))
    except ValueError:
        raise DomainError(VALIDATION_FAILED, details={"field": "checkpoint"}) from None


def format_checkpoint(at: datetime, row_id: str) -> str:
    """The checkpoint after the row ``(at, row_id)``."""
    return f"{at.isoformat()}|{row_id}"


def batch_size(requested: int, *, default: int, maximum: int) -> int:
    """The runner's batch size, or ``default`` when it gave none, never above ``maximum``."""
    return default if requested <= 0 else min(requested, maximum)
