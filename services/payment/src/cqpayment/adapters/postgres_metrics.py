"""The payment service's sampled gauges (``cqcommon.metrics``): payments by state and the
refunds waiting for a supervisor (R-PAY-5).

Refunds awaiting approval are read on ``refunds_state_idx`` (state, created_at): cheap every
interval. Payments by state need a scan of the whole table (only ``pending`` has an index of
its own), so that count runs at most every ``PAYMENTS_BY_STATE_PERIOD_S``.
"""

from __future__ import annotations

from collections.abc import Mapping

from cqcommon.db import Database
from cqcommon.metrics import (
    PAYMENTS,
    REFUNDS_AWAITING,
    REFUNDS_OLDEST_AGE,
    SampleFn,
    at_most_every,
)

#: every state of ``payments_state_known``: a state with no payment is reported as 0
PAYMENT_STATES = ("pending", "succeeded", "failed", "duplicate", "refunded")
PAYMENTS_BY_STATE_PERIOD_S = 300.0


def payment_samplers(db: Database) -> Mapping[str, SampleFn]:
    async def payments_by_state() -> None:
        async with db.connection() as conn:
            cur = await conn.execute("SELECT state, count(*) FROM payments GROUP BY state")
            counts = {str(state): int(n) for state, n in await cur.fetchall()}
        for state in PAYMENT_STATES:
            PAYMENTS.labels(state).set(counts.get(state, 0))

    async def refunds_awaiting() -> None:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8"
                " FROM refunds WHERE state = 'pending_approval'"
            )
            row = await cur.fetchone()
        assert row is not None
        REFUNDS_AWAITING.set(int(row[0]))
        REFUNDS_OLDEST_AGE.set(max(0.0, float(row[1] or 0.0)))

    return {
        "payments_by_state": at_most_every(PAYMENTS_BY_STATE_PERIOD_S, payments_by_state),
        "refunds_awaiting_approval": refunds_awaiting,
    }
