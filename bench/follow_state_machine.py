"""Benchmark: the follow quotas' state machine at scale (issue 10, R-FOL-3..8).

Runs ``FollowQuotaMachine`` of services/vehicle-follow/tests/unit/test_quota_state_machine.py
(imported, not copied) for ``--sequences`` random sequences (default 10,000) of up to
``--steps`` steps: follow / approve / decline / SMS-confirm / unfollow / revoke / licence
follows / expiry jobs / new-year, each answer predicted by the test's reference model, over
the real use cases on the in-memory unit of work. The suite runs the same machine for 100
sequences; this is the long run.

Disagreements with the model (*mismatches*) and quotas exceeded on the store (*overruns*)
are collected rather than stopping the run at the first (``FollowQuotaMachine.collect``): a
sequence that disagreed once is only checked for overruns afterwards, and counts one
mismatch. It prints

    sequences: N  steps: M  overruns: 0  mismatches: 0

(sequences counted by the machine's initialize rule, steps by its rules), then the wall
time, how often each answer came (the quota refusals by the quota they named) and the
first disagreements if there were any. Exits 1 when overruns or mismatches are not 0;
nothing about time is asserted. No database, Redis or network; one core.

    .venv/bin/python bench/follow_state_machine.py [--sequences 10000] [--steps 30]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from pathlib import Path

from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

# The machine lives in the follow service's unit tests, a directory without __init__.py
# (pytest imports it in importlib mode): import the module by that directory, by name, so
# that neither mypy nor ruff needs the tests on their paths.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services/vehicle-follow/tests/unit"))
machine_module = importlib.import_module("test_quota_state_machine")
FollowQuotaMachine = machine_module.FollowQuotaMachine
RunReport = machine_module.RunReport
machine_settings = machine_module.machine_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=30, help="most steps per sequence")
    args = parser.parse_args()
    # a failed fake SMS send logs a warning each time (SMS_UNAVAILABLE is one of the steps)
    logging.getLogger("cqfollow").setLevel(logging.ERROR)

    FollowQuotaMachine.collect = True
    FollowQuotaMachine.report = report = RunReport()
    run_settings = settings(
        machine_settings(args.sequences, steps=args.steps),
        database=None,  # leave no examples behind; nothing is replayed or shrunk here
        phases=[Phase.generate],
    )
    started = time.perf_counter()
    run_state_machine_as_test(FollowQuotaMachine, settings=run_settings)
    elapsed = time.perf_counter() - started

    print(
        f"sequences: {report.sequences}  steps: {report.steps}  "
        f"overruns: {report.overruns}  mismatches: {report.mismatches}"
    )
    print(f"wall time: {elapsed:.1f} s ({report.sequences / elapsed:.0f} sequences/s)")
    calls = sum(report.outcomes.values())
    print(f"use-case answers compared: {calls}")
    for outcome, n in sorted(report.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {outcome:<28} {n:>8}")
    for note in report.notes:
        print(note)
    return 1 if report.overruns or report.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
