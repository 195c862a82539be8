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
kills on purpose must not be one of them. The stack comes from ``DATABASE_URL``,
``REDIS_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` (the drill's own servers), which the
launcher reuses and never stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from cqdev.cluster import ChildSpec, HttpReady, default_config, run

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
            # process has no port of its own to probe
            out.append(ChildSpec(name, (python, flag, module, role), spec.ready, spec.env))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    config = default_config(ready_file=args.ready_file)
    config = dataclasses.replace(
        config,
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
