"""One batch of a nightly job (R-JOB-*) as every service's use cases answer it, and the
keyset checkpoints they hand back: a batch works the rows after ``(instant, uuid)`` in that
order and returns the last one it worked as ``<instant ISO>|<uuid>``, which the job runner
passes to the next batch. Pure code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cqcommon.errors import VALIDATION_FAILED, DomainError


@dataclass(frozen=True)
class JobBatch:
    """What one batch did: items worked, where the next starts, whether the job is done."""

    items_done: int
    checkpoint: str
    done: bool
    errors: int = 0
    #: a short, non-personal note for the run record
    message: str = ""


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
