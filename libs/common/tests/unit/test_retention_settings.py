"""The event log's retentions are checked when settings load: an inbox row must outlive
the outbox row whose republish it recognises (cqcommon.retention)."""

from __future__ import annotations

import pytest
from cqcommon.retention import retention_from
from cqcommon.settings import Settings
from pydantic import ValidationError


def test_inbox_retention_shorter_than_the_outbox_is_refused() -> None:
    with pytest.raises(ValidationError, match="INBOX_RETENTION_H"):
        Settings(outbox_retention_h=200, inbox_retention_h=100)


def test_retention_comes_from_the_settings() -> None:
    r = retention_from(
        Settings(outbox_retention_h=24, inbox_retention_h=48, event_log_prune_interval_s=0)
    )
    assert (r.outbox.total_seconds(), r.inbox.total_seconds(), r.interval_s) == (
        86_400,
        172_800,
        0,
    )
