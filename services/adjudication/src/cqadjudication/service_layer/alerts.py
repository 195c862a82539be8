"""Use case: staff list the R-X-2 points-buying alerts, newest first, a page at a time.

The cursor is the last alert's (raised_at, alert_id), base64url-encoded: it says nothing
a staff member could not see on the page itself, and a malformed one is ``INVALID_CURSOR``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from cqcommon.errors import INVALID_CURSOR, VALIDATION_FAILED, DomainError

from cqadjudication.domain.alerts import PointsBuyingAlert
from cqadjudication.domain.callers import Caller, require_staff
from cqadjudication.ports import UnitOfWork

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class AlertPage:
    alerts: list[PointsBuyingAlert]
    next_cursor: str


def encode_cursor(alert: PointsBuyingAlert) -> str:
    raw = f"{alert.raised_at.isoformat()}|{alert.alert_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, alert_id = raw.split("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, str(uuid.UUID(alert_id))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise DomainError(INVALID_CURSOR) from None


async def list_points_buying_alerts(
    *, uow: UnitOfWork, caller: Caller, page_size: int, cursor: str
) -> AlertPage:
    require_staff(caller)
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise DomainError(VALIDATION_FAILED, details={"field": "page_size", "max": MAX_PAGE_SIZE})
    after = decode_cursor(cursor) if cursor else None
    rows = await uow.alerts.page(limit=size + 1, after=after)
    shown = rows[:size]
    next_cursor = encode_cursor(shown[-1]) if len(rows) > size else ""
    return AlertPage(shown, next_cursor)
