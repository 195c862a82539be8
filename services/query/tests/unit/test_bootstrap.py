"""The query service refuses to sign cursors with a development key outside sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cqcommon.settings import Settings
from cqquery.bootstrap import InsecureCursorSecretError, cursor_signer
from cqquery.domain.cursor import CursorScope, Position
from cqquery.domain.model import Caller

STRONG = "k" * 40


def test_outside_sandbox_the_default_or_a_short_cursor_secret_refuses_to_start() -> None:
    for secret in (Settings.model_fields["cursor_secret"].default, "short"):
        settings = Settings(sandbox_mode=False, cursor_secret=secret)
        with pytest.raises(InsecureCursorSecretError, match="CURSOR_SECRET"):
            cursor_signer(settings)


def test_outside_sandbox_a_short_previous_cursor_secret_refuses_to_start() -> None:
    settings = Settings(sandbox_mode=False, cursor_secret=STRONG, cursor_secret_previous="old")
    with pytest.raises(InsecureCursorSecretError, match="CURSOR_SECRET_PREVIOUS"):
        cursor_signer(settings)


def test_sandbox_or_a_real_secret_starts_and_the_secret_is_the_key() -> None:
    assert cursor_signer(Settings(sandbox_mode=True))
    scope = CursorScope.of("user_list", "vehicle", "veh-1", None, Caller(user_id="u"))
    at = Position(datetime(2026, 11, 1, tzinfo=UTC), "vio-1")
    cursor = cursor_signer(Settings(sandbox_mode=False, cursor_secret=STRONG)).sign(scope, at)
    other = cursor_signer(Settings(sandbox_mode=False, cursor_secret="j" * 40))
    with pytest.raises(Exception, match="INVALID_CURSOR"):
        other.verify(scope, cursor)
