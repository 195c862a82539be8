"""The catalogue: every nightly job, the service whose ``RunJob`` works it, in the fixed
order the runner takes them.

Why this order: pending payments are resolved (R-JOB-1) before the day is reconciled
(R-JOB-2) and before overdue decisions are marked (R-JOB-6), so a payment that did go
through is neither a mismatch nor an overdue SMS; notices (R-JOB-3) and follow expiry
(R-JOB-4) depend on nothing else; the scoring-cycle rollover (R-JOB-5) asks whether every
fine is paid, so it runs after the payment jobs; the idempotency-key reaper is mere
housekeeping and goes last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAYMENT = "payment"
FOLLOW = "follow"
ADJUDICATION = "adjudication"
SERVICES = (PAYMENT, FOLLOW, ADJUDICATION)


@dataclass(frozen=True)
class JobSpec:
    """One job: its name in the owning service, that service, the rule it serves, and a
    batch size of its own (None: the runner's ``JOBS_BATCH_SIZE``)."""

    name: str
    service: str
    rule: str
    batch_size: int | None = None


CATALOGUE: tuple[JobSpec, ...] = (
    JobSpec("resolve_pending_payments", PAYMENT, "R-JOB-1"),
    JobSpec("reconcile_payments", PAYMENT, "R-JOB-2"),
    JobSpec("notify_overdue_decisions", PAYMENT, "R-JOB-6"),
    JobSpec("generate_decision_notices", ADJUDICATION, "R-JOB-3"),
    JobSpec("expire_sms_follows", FOLLOW, "R-JOB-4"),
    JobSpec("expire_follow_requests", FOLLOW, "R-FOL-2"),
    JobSpec("scoring_cycle_rollover", ADJUDICATION, "R-JOB-5"),
    JobSpec("reap_idempotency_keys", PAYMENT, "R-PAY-3"),
)

JOB_NAMES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)


class UnknownJobError(ValueError):
    """A job name that is not in the catalogue."""


def job_named(name: str) -> JobSpec:
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise UnknownJobError(name)


def select(names: Sequence[str] | None) -> tuple[JobSpec, ...]:
    """The catalogue's jobs named (all when None), always in the catalogue's order."""
    if not names:
        return CATALOGUE
    wanted = {job_named(n).name for n in names}
    return tuple(spec for spec in CATALOGUE if spec.name in wanted)
