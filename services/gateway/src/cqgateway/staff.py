"""Counter staff accounts: salted scrypt password hashes in the gateway schema.

A login answers the same ``STAFF_LOGIN_FAILED`` for an unknown user and a wrong
password, and spends the same scrypt work on both (a dummy hash for unknown users), so
neither the answer nor its timing says which usernames exist.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cqcommon.db import Database
from cqcommon.errors import STAFF_LOGIN_FAILED, DomainError

from cqgateway.tokens import STAFF_ROLES, StaffRole

# scrypt cost: ~50 ms and 16 MiB per check on a laptop; runs in a worker thread.
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024

SANDBOX_ACCOUNTS: tuple[tuple[str, StaffRole], ...] = (
    ("clerk01", "clerk"),
    ("super01", "supervisor"),
)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=_MAXMEM
    )
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of ``password`` against a stored hash."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(hash_b64)
        actual = hashlib.scrypt(
            password.encode(),
            salt=salt,
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so both failures cost the same."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffAccount:
    staff_id: str
    role: StaffRole


class StaffRepository:
    """Staff accounts in ``gateway.staff``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def authenticate(self, username: str, password: str) -> StaffAccount:
        """The account, or ``DomainError(STAFF_LOGIN_FAILED)`` for any failure."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT role, password_hash FROM staff WHERE staff_id = %s AND active",
                (username,),
            )
            row = await cur.fetchone()
        stored = str(row[1]) if row else _dummy_hash()
        ok = await asyncio.to_thread(verify_password, password, stored)
        if row is None or not ok or row[0] not in STAFF_ROLES:
            raise DomainError(STAFF_LOGIN_FAILED)
        role: StaffRole = "supervisor" if row[0] == "supervisor" else "clerk"
        return StaffAccount(username, role)

    async def upsert(self, staff_id: str, role: StaffRole, password: str) -> None:
        """Create or reset an account (sandbox accounts at start, admin scripts)."""
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO staff (staff_id, role, password_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT (staff_id) DO UPDATE SET role = EXCLUDED.role,"
                " password_hash = EXCLUDED.password_hash, active = true, updated_at = now()",
                (staff_id, role, hashed),
            )

    async def ensure_sandbox_accounts(self, password: str) -> None:
        """SANDBOX.md's clerk01 (clerk) and super01 (supervisor) with ``password``."""
        for staff_id, role in SANDBOX_ACCOUNTS:
            await self.upsert(staff_id, role, password)
