"""``python -m cqjobs …``: the runner's command line.

* ``jobs run [--job NAME]... [--now TIME] [--force]`` (``make jobs``): the night's jobs once,
  with progress per job; exit 0 when nothing failed, 1 when a job failed, 2 when refused
  (outside 22:00–00:30 Asia/Shanghai without ``--force``, or an unknown job).
* ``scheduler``: wait for 22:00 Asia/Shanghai, run every job, wait for the next night.
* ``serve``: the gRPC server (JobsService: the run records for staff) only.
* ``run``: ``serve`` and ``scheduler`` in one process, like the services' ``run``
  (what ``make run`` starts); ``serve`` alone with ``JOBS_SCHEDULER=false``.
* ``migrate``: apply the jobs schema's migrations and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from cqcommon.clock import SHANGHAI, Clock, SystemClock
from cqcommon.db import Database
from cqcommon.logs import configure_logging
from cqcommon.maintenance import DEFAULT_WINDOW
from cqcommon.migrations import apply_migrations
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings

from cqjobs.adapters.clocks import StartedAtClock
from cqjobs.adapters.terminal import TerminalProgress
from cqjobs.domain.catalogue import JOB_NAMES, select
from cqjobs.domain.runs import night_of, parse_now
from cqjobs.service_layer.runner import NightReport, OutsideWindowError
from cqjobs.service_layer.scheduler import Scheduler
from cqjobs.wiring import MIGRATIONS_DIR, SPEC, build_runner

EXIT_FAILED = 1
EXIT_REFUSED = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cqjobs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the jobs schema's migrations and exit")
    sub.add_parser("serve", help="the gRPC server (run records) only")
    sub.add_parser("scheduler", help="run every job each night at 22:00 Asia/Shanghai")
    sub.add_parser("run", help="gRPC server and scheduler in one process")
    jobs = sub.add_parser("jobs", help="the nightly jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run = jobs_sub.add_parser("run", help="run the night's jobs once, now")
    run.add_argument(
        "--job",
        action="append",
        choices=JOB_NAMES,
        metavar="NAME",
        help=f"only this job (repeatable); one of: {', '.join(JOB_NAMES)}",
    )
    run.add_argument(
        "--now",
        metavar="TIME",
        help="the runner's clock starts here and runs on: ISO 8601 (no zone: Asia/Shanghai)"
        " or HH:MM today; also sent to the services as the jobs' as_of",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run outside 22:00-00:30, and again jobs already completed this night",
    )
    return parser


def _clock(now_arg: str | None) -> Clock:
    if now_arg is None:
        return SystemClock()
    today = datetime.now(SHANGHAI).date()
    return StartedAtClock(parse_now(now_arg, today))


def _summary(report: NightReport) -> str:
    parts = [f"{o.job}: {o.outcome.value}" for o in report.outcomes]
    return f"night {report.night.isoformat()}: " + "; ".join(parts)


async def jobs_run(
    settings: Settings,
    *,
    jobs: Sequence[str] | None,
    now: str | None,
    force: bool,
    out: TextIO | None = None,
) -> int:
    """``jobs run``; the exit code. SIGTERM cancels it like Ctrl-C: the job in progress is
    recorded as interrupted and the next run resumes from its checkpoint."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        clock = _clock(now)
    except ValueError as exc:
        print(f"cqjobs: --now: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    started = clock.now()
    if not force and not DEFAULT_WINDOW.contains(started):
        print(f"cqjobs: refused: {OutsideWindowError(started, DEFAULT_WINDOW)}", file=sys.stderr)
        return EXIT_REFUSED
    await apply_migrations(settings.database_url, SPEC.schema, MIGRATIONS_DIR)
    db = Database(settings.database_url, SPEC.schema, min_size=1, max_size=2)
    await db.open()
    stream = out if out is not None else sys.stdout
    progress = TerminalProgress(stream)
    parts = build_runner(settings, db, clock, progress, send_as_of=now is not None)
    print(
        f"cqjobs: night {night_of(started).isoformat()}, clock {started.astimezone(SHANGHAI)}"
        + (" (forced)" if force else ""),
        file=stream,
        flush=True,
    )
    try:
        report = await parts.runner.run(select(jobs), force=force)
    except OutsideWindowError as exc:
        print(f"cqjobs: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        await parts.close()
        await db.close()
    print(_summary(report), file=stream, flush=True)
    return EXIT_FAILED if report.failed else 0


async def _until_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve_and_schedule(settings: Settings, *, schedule: bool, serve: bool) -> None:
    """``run`` (both), ``serve`` or ``scheduler``: until SIGTERM / SIGINT."""
    stop = asyncio.Event()
    await _until_signal(stop)
    runtime = ServiceRuntime(SPEC, settings, roles=("serve",) if serve else ())
    await runtime.start()
    assert runtime.ctx is not None
    clock = runtime.clock
    parts = build_runner(settings, runtime.ctx.db, clock, TerminalProgress(sys.stderr))
    task: asyncio.Task[None] | None = None
    if schedule:
        task = asyncio.create_task(Scheduler(parts.runner, clock).run(stop), name="scheduler")
    try:
        await stop.wait()
    finally:
        if task is not None:
            # a night in progress is interrupted; its record says so and the next run resumes
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await parts.close()
        await runtime.stop()


def roles_of(command: str, settings: Settings) -> tuple[bool, bool]:
    """(serve, schedule) of ``command``: an explicit ``scheduler`` always schedules,
    ``run`` unless ``JOBS_SCHEDULER`` is false."""
    serve = command in ("serve", "run")
    schedule = command == "scheduler" or (command == "run" and settings.jobs_scheduler)
    return serve, schedule


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(SPEC.name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(apply_migrations(settings.database_url, SPEC.schema, MIGRATIONS_DIR))
        print(f"jobs: {len(applied)} migrations applied" + "".join(f"\n  {a}" for a in applied))
        return 0
    if args.command == "jobs":
        try:
            return asyncio.run(jobs_run(settings, jobs=args.job, now=args.now, force=args.force))
        except (KeyboardInterrupt, asyncio.CancelledError):
            return 130
    serve, schedule = roles_of(args.command, settings)
    asyncio.run(serve_and_schedule(settings, schedule=schedule, serve=serve))
    return 0
