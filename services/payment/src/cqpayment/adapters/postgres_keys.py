"""PostgreSQL repository of idempotency keys (R-PAY-3; the ``IdempotencyKeyRepository``
port). Works inside the caller's transaction.

The claim is ``INSERT ... ON CONFLICT DO NOTHING`` and, when the key exists, ``SELECT ...
FOR UPDATE``: two requests racing with one key never both insert it, the loser waits for
the winner's short claim transaction and then judges the stored key. A key deleted between
the two statements (its request released it) is claimed again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn

from cqpayment.domain.idempotency import KeyId, KeyState, Operation, StoredKey

_COLUMNS = (
    "scope, operation, key, request_hash, state, payment_id::text, response, locked_at,"
    " created_at, completed_at"
)
_WHERE = "scope = %s AND operation = %s AND key = %s"


def _params(key: KeyId) -> tuple[str, str, str]:
    return (key.scope, key.operation.value, key.key)


def _stored(row: tuple[Any, ...]) -> StoredKey:
    return StoredKey(
        id=KeyId(row[0], Operation(row[1]), row[2]),
        request_hash=row[3],
        state=KeyState(row[4]),
        payment_id=row[5],
        response=bytes(row[6]) if row[6] is not None else None,
        locked_at=row[7],
        created_at=row[8],
        completed_at=row[9],
    )


class PostgresIdempotencyKeys:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def claim(self, key: KeyId, *, request_hash: str, now: datetime) -> StoredKey | None:
        for _ in range(3):
            cur = await self.conn.execute(
                "INSERT INTO idempotency_keys (scope, operation, key, request_hash, state,"
                " locked_at, created_at) VALUES (%s, %s, %s, %s, 'in_flight', %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (*_params(key), request_hash, now, now),
            )
            if await cur.fetchone() is not None:
                return None
            cur = await self.conn.execute(
                f"SELECT {_COLUMNS} FROM idempotency_keys WHERE {_WHERE} FOR UPDATE",
                _params(key),
            )
            row = await cur.fetchone()
            if row is not None:
                return _stored(row)
        raise RuntimeError("idempotency key claimed and released repeatedly")

    async def lock_again(self, key: KeyId, *, now: datetime) -> None:
        await self.conn.execute(
            f"UPDATE idempotency_keys SET locked_at = %s WHERE {_WHERE}", (now, *_params(key))
        )

    async def attach(self, key: KeyId, payment_id: str) -> None:
        await self.conn.execute(
            f"UPDATE idempotency_keys SET payment_id = %s WHERE {_WHERE}",
            (payment_id, *_params(key)),
        )

    async def complete(self, key: KeyId, *, response: bytes, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE idempotency_keys SET state = 'completed', response = %s, completed_at = %s,"
            f" locked_at = NULL WHERE {_WHERE}",
            (response, now, *_params(key)),
        )

    async def unlock(self, key: KeyId) -> None:
        await self.conn.execute(
            f"UPDATE idempotency_keys SET locked_at = NULL WHERE {_WHERE}", _params(key)
        )

    async def release(self, key: KeyId) -> None:
        await self.conn.execute(f"DELETE FROM idempotency_keys WHERE {_WHERE}", _params(key))

    async def reap(self, *, older_than: datetime, limit: int) -> int:
        cur = await self.conn.execute(
            "DELETE FROM idempotency_keys WHERE (scope, operation, key) IN ("
            " SELECT scope, operation, key FROM idempotency_keys"
            " WHERE (state = 'completed' AND completed_at < %s)"
            " OR (state = 'in_flight' AND created_at < %s)"
            " LIMIT %s FOR UPDATE SKIP LOCKED)",
            (older_than, older_than, limit),
        )
        return cur.rowcount
