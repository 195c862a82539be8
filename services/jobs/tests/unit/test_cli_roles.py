"""What ``python -m cqjobs <command>`` runs: ``run`` serves and schedules the nightly
jobs unless ``JOBS_SCHEDULER=false`` (benchmarks of daytime load start the cluster in
the 22:00-00:30 window too, and the night's jobs would take its cores)."""

from __future__ import annotations

from cqcommon.settings import Settings
from cqjobs.entrypoints.cli import roles_of


def test_run_serves_and_schedules_unless_the_scheduler_is_off() -> None:
    assert roles_of("run", Settings()) == (True, True)
    assert roles_of("run", Settings(jobs_scheduler=False)) == (True, False)


def test_serve_and_scheduler_do_what_they_say_whatever_the_setting() -> None:
    off = Settings(jobs_scheduler=False)
    assert roles_of("serve", Settings()) == (True, False)
    assert roles_of("scheduler", off) == (False, True)
