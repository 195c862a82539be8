"""The cluster launcher of the fault drills: ``make run``'s launcher with two roles split off.

``python bench/drills/launcher.py --ready-file F --log-dir D`` runs :func:`cqdev.cluster.run`
on the configuration ``make run`` uses (:func:`cqdev.cluster.default_config`, so migrations,
the fake Alipay, the sandbox roster and readiness are exactly those of ``make run``), except
that adjudication and query are started without the roles a drill kills:

- adjudication runs as ``serve`` and ``consume`` (two children) — its outbox **relay** is
  started by the drill itself (``python -m cqadjudication relay``);
- query runs as ``serve`` — its read-model **consumer** is started by the drill
  (``python -m cqquery consume``).

The launcher stops everything when one of *its* children dies, so a process the drill
kills on purpose must not be one of them. The sandbox roster's loader needs the relay (its
violations reach payment as events), so it starts only once the drill's roles have logged
that they started (``--owned-log``; they run at ``LOG_LEVEL=INFO``): ``launcher.py
--wait-for LOG... -- python -m cqregistry load-sandbox`` waits, then becomes the loader. The stack comes from ``DATABASE_URL``,
``REDIS_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` (the drill's own servers), which the
launcher reuses and never stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cqdev.cluster import ChildSpec, HttpReady, default_config, run
from cqdev.stack import free_port

#: (service, roles the launcher starts) where the drill owns the remaining role.
SPLIT: dict[str, tuple[str, ...]] = {
    "adjudication": ("serve", "consume"),
    "query": ("serve",),
}
#: The roles a drill starts and kills itself: (name, module, role).
DRILL_OWNED: tuple[tuple[str, str, str], ...] = (
    ("adjudication-relay", "cqadjudication", "relay"),
    ("query-consume", "cqquery", "consume"),
)


def split_services(services: Sequence[ChildSpec]) -> list[ChildSpec]:
    """``services`` with the ``run`` of each split service replaced by one child per role."""
    out: list[ChildSpec] = []
    for spec in services:
        roles = SPLIT.get(spec.name)
        if roles is None:
            out.append(spec)
            continue
        python, flag, module, _run = spec.argv
        for role in roles:
            name = spec.name if role == "serve" else f"{spec.name}-{role}"
            # every role is "ready" once the service's gRPC health answers: a consume-only
            # process has no port of its own to probe. Each process serves its metrics on
            # a port of its own (two on one METRICS_PORT: the second dies at start)
            env = dict(spec.env)
            if "METRICS_PORT" in env:
                env["METRICS_PORT"] = str(free_port())
            out.append(ChildSpec(name, (python, flag, module, role), spec.ready, env))
    return out


#: what ServiceRuntime.start logs once a role runs (migrations applied, tasks spawned)
STARTED_MARK = " started ("
WAIT_LIMIT_S = 300.0


def wait_then_exec(logs: Sequence[Path], command: Sequence[str]) -> None:
    """Wait (bounded) until every log in ``logs`` says its process started; exec ``command``."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    for log in logs:
        while STARTED_MARK not in (log.read_text("utf-8", "replace") if log.exists() else ""):
            if time.monotonic() > deadline:
                print(f"{log} does not say started after {WAIT_LIMIT_S:.0f}s; going on")
                break
            time.sleep(0.2)
    os.execv(command[0], list(command))  # noqa: S606 - becomes the loader the launcher started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait-for", type=Path, nargs="+", help="then exec what follows --")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--log-dir", type=Path)
    parser.add_argument("--owned-log", type=Path, action="append", default=[])
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    if args.wait_for:
        wait_then_exec(args.wait_for, args.command)
    if args.ready_file is None or args.log_dir is None:
        parser.error("--ready-file and --log-dir are required")
    config = default_config(ready_file=args.ready_file)
    after_ready = [
        (name, (sys.executable, __file__, "--wait-for", *map(str, args.owned_log), "--", *cmd))
        if args.owned_log
        else (name, cmd)
        for name, cmd in config.after_ready
    ]
    config = dataclasses.replace(
        config,
        after_ready=after_ready,
        services=split_services(config.services),
        # /readyz waits for the sandbox roster, which the launcher loads only once every
        # child is ready: the gateway counts as started when it answers /healthz, and the
        # drill waits for /readyz itself after the roster is loaded
        gateway=dataclasses.replace(
            config.gateway, ready=HttpReady(config.gateway_url + "/healthz")
        ),
        log_dir=args.log_dir,
        print_logins=False,
        stop_grace_s=20.0,
        # a busy shared machine: migrations and nine processes can take minutes to be ready
        ready_timeout_s=600.0,
    )
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
