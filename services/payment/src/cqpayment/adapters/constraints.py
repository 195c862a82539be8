"""Every constraint of the ``payment`` schema and what a request that hits it receives
(R-ERR-1: a 4xx with a stable code, never a 500).

The schema holds only cqcommon's plumbing tables so far; the payments, idempotency keys and refunds (issue: fine payment) add their
constraints here with their refusals. The walk over every schema
(``tests/integration/test_constraint_tables.py``) fails on a constraint this table does not
know, so none can ship without a decided answer.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable

PAYMENT_CONSTRAINTS = ConstraintTable(schema="payment", refusals={}, unreachable=dict(PLUMBING))
