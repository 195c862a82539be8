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
_LOADER_SET = (
    "written only by MarkSandboxRosterLoaded: a generated id, the time by default, and the"
    " three counts, which the request always carries (proto3 int32, never null)"
)

REGISTRY_CONSTRAINTS = ConstraintTable(
    schema="registry",
    refusals={
        # two imports racing for one natural key, or a pin that is another key's id
        "master_records_pkey": Refusal(REGISTRY_ID_CONFLICT, field="pinned_id"),
        "master_records_natural_key": Refusal(REGISTRY_ID_CONFLICT),
        "master_records_kind_check": Refusal(VALIDATION_FAILED, field="record"),
        # MarkSandboxRosterLoaded's counts are int32 on the wire: a negative one is refused
        "sandbox_roster_loads_records_check": Refusal(VALIDATION_FAILED, field="records"),
        "sandbox_roster_loads_violations_check": Refusal(VALIDATION_FAILED, field="violations"),
        "sandbox_roster_loads_follows_check": Refusal(VALIDATION_FAILED, field="follows"),
    },
    unreachable={
        **columns(
            "master_records",
            ("kind", "record_id", "content_hash", "payload", "imported_at"),
            _SERVER_SET,
        ),
        # the sandbox roster's load record (MarkSandboxRosterLoaded): a generated id, the
        # time, and the loader's counts (checked above); refused outside sandbox mode
        **columns(
            "sandbox_roster_loads",
            ("load_id", "loaded_at", "records", "violations", "follows"),
            _LOADER_SET,
        ),
        "sandbox_roster_loads_pkey": _LOADER_SET,
        **PLUMBING,
    },
)
