"""Every constraint of the ``follow`` schema and what a request that hits it receives
(R-ERR-1: a 4xx with a stable code, never a 500).

The schema holds only cqcommon's plumbing tables so far; the follows, quotas and SMS codes (issue: following) add their
constraints here with their refusals. The walk over every schema
(``tests/integration/test_constraint_tables.py``) fails on a constraint this table does not
know, so none can ship without a decided answer.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable

FOLLOW_CONSTRAINTS = ConstraintTable(schema="follow", refusals={}, unreachable=dict(PLUMBING))
