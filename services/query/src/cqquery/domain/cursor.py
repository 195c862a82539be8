"""Signed cursors for keyset pagination over (occurred_at DESC, violation_id DESC).

A cursor is ``<position>.<mac>``: the position (the last row of the page, base64url
JSON) and an HMAC-SHA256 over the position *and* what the cursor is for — the purpose
(the user list, or one of the two counter reads), the subject (kind and id), the status
filter and the caller (user or staff id). So a cursor only continues the list it came
from, for the caller it was given to: one from another list, another subject, another
status filter, another caller or another endpoint, or one altered in any byte, is
``INVALID_CURSOR`` (400). The position itself is not secret (it is the last row shown),
it just cannot be chosen by the client.

Pages are cached and shared between callers (they carry no personal data), so a page
holds the *unsigned* :class:`Position` and each response signs it for its own caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cqcommon.errors import INVALID_CURSOR, DomainError

from cqquery.domain.model import Caller, Kind

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

#: what a cursor continues: the user list (``GET /api/v1/violations``, also continued
#: from the proof lookups' first page) or a counter read (StaffGetVehicle/StaffGetLicence)
Purpose = Literal["user_list", "staff_vehicle", "staff_licence"]
_MAC_VERSION = "c1"  # changes if the signed fields ever change


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row shown (the next page starts after it)."""

    occurred_at: datetime
    violation_id: str

    def token(self) -> str:
        """A stable text form (the page cache key's tail, the signed payload)."""
        return json.dumps([self.occurred_at.isoformat(), self.violation_id])

    @classmethod
    def from_token(cls, token: str | bytes) -> Position:
        """The position of :meth:`token`; ``ValueError`` for anything else."""
        try:
            at, vid = json.loads(token)
        except (TypeError, ValueError) as exc:
            raise ValueError("not a position") from exc
        if not isinstance(at, str) or not isinstance(vid, str):
            raise ValueError("not a position")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("position without a timezone")
        return cls(when, vid)


@dataclass(frozen=True)
class CursorScope:
    """What a cursor is bound to; all of it is signed along with the position."""

    purpose: Purpose
    kind: Kind
    subject_id: str
    status: str  # the status filter, "*" for none
    caller: str  # "user:<alipay user id>" or "staff:<staff id>"

    @classmethod
    def of(
        cls, purpose: Purpose, kind: Kind, subject_id: str, status: str | None, caller: Caller
    ) -> CursorScope:
        who = f"staff:{caller.staff_id}" if caller.is_staff else f"user:{caller.user_id}"
        return cls(purpose, kind, subject_id, status or "*", who)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


class CursorSigner:
    """Signs and verifies cursors with one secret key (``settings.cursor_secret``)."""

    def __init__(self, secret: str | bytes, *, previous: str | bytes = b"") -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if not key:
            raise ValueError("a cursor key must not be empty")
        self._key = key
        old = previous.encode() if isinstance(previous, str) else previous
        # during a rotation, cursors signed with the old key stay valid
        self._verify_keys = [key] + ([old] if old else [])

    def _mac(self, scope: CursorScope, token: str, key: bytes | None = None) -> bytes:
        # a JSON array, so no field can run into the next one
        signed = json.dumps(
            [
                _MAC_VERSION,
                scope.purpose,
                scope.kind,
                scope.subject_id,
                scope.status,
                scope.caller,
                token,
            ],
            ensure_ascii=False,
        )
        return hmac.new(key or self._key, signed.encode(), hashlib.sha256).digest()

    def sign(self, scope: CursorScope, position: Position) -> str:
        token = position.token()
        return f"{_b64(token.encode())}.{_b64(self._mac(scope, token))}"

    def verify(self, scope: CursorScope, cursor: str) -> Position:
        """The position of a cursor signed for ``scope``; anything else is INVALID_CURSOR."""
        try:
            body, _, mac = cursor.partition(".")
            token = _unb64(body).decode()
            given = _unb64(mac)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise DomainError(INVALID_CURSOR) from exc
        if not any(
            hmac.compare_digest(given, self._mac(scope, token, k)) for k in self._verify_keys
        ):
            raise DomainError(INVALID_CURSOR)
        try:
            return Position.from_token(token)
        except ValueError as exc:  # signed by us, so only if the format ever changes
            raise DomainError(INVALID_CURSOR) from exc


def page_size(requested: int) -> int:
    """The page size to use: the default for 0, at most ``MAX_PAGE_SIZE``."""
    if requested < 0:
        raise DomainError(INVALID_CURSOR, details={"page_size": requested})
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
