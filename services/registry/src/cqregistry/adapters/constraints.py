"""Every constraint of the ``registry`` schema and what an import that hits it receives
(R-ERR-1: a 4xx with a stable code, never a 500).

``ImportRecords`` validates each record before writing (known kinds, well-formed keys), and
inserts with ``ON CONFLICT DO NOTHING``: a natural key or id taken by a concurrent import
is answered ``REGISTRY_ID_CONFLICT`` by the use case, not by the database. These entries are
the second line, in case a write ever reaches the constraint itself. The walk over every
schema (``tests/integration/test_constraint_tables.py``) fails on one this table lacks.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, Refusal, columns
from cqcommon.errors import REGISTRY_ID_CONFLICT, VALIDATION_FAILED

_SERVER_SET = "set by the use case from a validated record (kind, id, hash, bytes) or by default"

REGISTRY_CONSTRAINTS = ConstraintTable(
    schema="registry",
    refusals={
        # two imports racing for one natural key, or a pin that is another key's id
        "master_records_pkey": Refusal(REGISTRY_ID_CONFLICT, field="pinned_id"),
        "master_records_natural_key": Refusal(REGISTRY_ID_CONFLICT),
        "master_records_kind_check": Refusal(VALIDATION_FAILED, field="record"),
    },
    unreachable={
        **columns(
            "master_records",
            ("kind", "record_id", "content_hash", "payload", "imported_at"),
            _SERVER_SET,
        ),
        **PLUMBING,
    },
)
