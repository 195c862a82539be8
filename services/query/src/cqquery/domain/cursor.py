"""Opaque cursors for keyset pagination over (occurred_at DESC, violation_id DESC)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from cqcommon.errors import INVALID_CURSOR, DomainError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_cursor(occurred_at: datetime, violation_id: str) -> str:
    raw = json.dumps([occurred_at.isoformat(), violation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, vid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(vid, str):
            raise ValueError
        return when, vid
    except (ValueError, TypeError) as exc:
        raise DomainError(INVALID_CURSOR) from exc


def page_size(requested: int) -> int:
    """The page size to use: the default for 0, at most ``MAX_PAGE_SIZE``."""
    if requested < 0:
        raise DomainError(INVALID_CURSOR, details={"page_size": requested})
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
