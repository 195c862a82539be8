"""Counter staff accounts: salted scrypt password hashes in the gateway schema.

A login answers the same ``STAFF_LOGIN_FAILED`` for an unknown user and a wrong
password, and spends the same scrypt work on both (a dummy hash for unknown users), so
neither the answer nor its timing says which usernames exist.

A staff token is honoured only while its account exists and is active, with the
account's current role: ``StaffAccountCache`` asks the table per request but trusts an
answer for ``STAFF_ACCOUNT_CHECK_TTL_S`` seconds (default 5), so the hot path costs no
query while disabling an account (``python -m cqgateway staff disable <username>``) or
changing its role takes effect within seconds, long before the token expires.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
        return StaffAccount(username, _role(row[0]))

    async def active_account(self, staff_id: str) -> StaffAccount | None:
        """The account with its current role, or None if it does not exist or is disabled."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT role FROM staff WHERE staff_id = %s AND active", (staff_id,)
            )
            row = await cur.fetchone()
        if row is None or row[0] not in STAFF_ROLES:
            return None
        return StaffAccount(staff_id, _role(row[0]))

    async def set_active(self, staff_id: str, active: bool) -> bool:
        """Enable or disable an account; False when there is no such account."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE staff SET active = %s, updated_at = now() WHERE staff_id = %s",
                (active, staff_id),
            )
            return cur.rowcount == 1

    async def upsert(
        self, staff_id: str, role: StaffRole, password: str, *, reactivate: bool = True
    ) -> None:
        """Create or reset an account (sandbox accounts at start, admin scripts).

        ``reactivate=False`` keeps a disabled account disabled (a restart must not undo
        ``staff disable``)."""
        hashed = await asyncio.to_thread(hash_password, password)
        active = "true" if reactivate else "staff.active"
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO staff (staff_id, role, password_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT (staff_id) DO UPDATE SET role = EXCLUDED.role,"
                f" password_hash = EXCLUDED.password_hash, active = {active},"
                " updated_at = now()",
                (staff_id, role, hashed),
            )

    async def ensure_sandbox_accounts(self, password: str) -> None:
        """SANDBOX.md's clerk01 (clerk) and super01 (supervisor) with ``password``."""
        for staff_id, role in SANDBOX_ACCOUNTS:
            await self.upsert(staff_id, role, password, reactivate=False)


def _role(value: object) -> StaffRole:
    return "supervisor" if value == "supervisor" else "clerk"


class ActiveAccounts(Protocol):
    """Where the cache asks (``StaffRepository``; a fake in unit tests)."""

    async def active_account(self, staff_id: str) -> StaffAccount | None: ...


class StaffAccountCache:
    """``active_account`` answers trusted for ``ttl_s`` seconds (negative answers too).

    In-process and per gateway replica: each replica asks the table about once per account
    per ``ttl_s`` (concurrent misses may each ask; the answer is the same).
    """

    def __init__(
        self,
        repository: ActiveAccounts,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl_s = ttl_s
        self._clock = clock
        self._answers: dict[str, tuple[float, StaffAccount | None]] = {}

    async def active_account(self, staff_id: str) -> StaffAccount | None:
        """The account if it exists and is active (current role), else None."""
        cached = self._answers.get(staff_id)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        account = await self._repository.active_account(staff_id)
        if len(self._answers) > 10_000:  # only signed tokens get here; still bound memory
            self._answers.clear()
        self._answers[staff_id] = (self._clock() + self._ttl_s, account)
        return account
