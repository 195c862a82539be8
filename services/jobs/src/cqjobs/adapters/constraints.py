"""Every constraint of the ``jobs`` schema (R-ERR-1's walk, tests/integration/
test_constraint_tables.py): no request writes it (the runner alone does, with values it
makes itself), so every one is listed as unreachable with the reason."""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, columns

_RUNNER = (
    "written only by the job runner (fresh uuid4, catalogue names, its clock, the services'"
    " checkpoints), never from a request"
)

UNREACHABLE: dict[str, str] = {
    "runs_pkey": _RUNNER,
    "runs_state_known": _RUNNER,
    "runs_ended_unless_running": _RUNNER,
    "runs_counts_not_negative": _RUNNER,
    "runs_resumed_from_fk": _RUNNER + "; the resumed run was read first and runs are kept",
    **columns(
        "runs",
        (
            "run_id",
            "job",
            "service",
            "night",
            "started_at",
            "state",
            "items_done",
            "errors",
            "batches",
            "checkpoint",
            "message",
            "forced",
        ),
        _RUNNER,
    ),
    **PLUMBING,
}

JOBS_CONSTRAINTS = ConstraintTable(schema="jobs", refusals={}, unreachable=UNREACHABLE)
