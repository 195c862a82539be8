"""Command line of the registry service: the common service commands plus the sandbox
roster's (``load-sandbox``, ``sandbox-vins``; the bulk generator of synthetic data is dev
tooling: ``python -m cqdev generate``)."""

from __future__ import annotations

from collections.abc import Sequence

SANDBOX_COMMANDS = frozenset({"load-sandbox", "sandbox-vins"})


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in SANDBOX_COMMANDS:
        # imported here: the loader is a gRPC client and needs none of the service's runtime
        # (PostgreSQL, Redis, Kafka, the servicer), which would double its start time
        from cqregistry.entrypoints import loader

        return loader.main(argv)
    from cqcommon.runner import main as service_main

    from cqregistry.wiring import SPEC

    return service_main(SPEC, argv)
