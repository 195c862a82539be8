"""Command line of the registry service: the common service commands plus the sandbox
roster's (``load-sandbox``, ``sandbox-vins``; the bulk generator of synthetic data is dev
tooling: ``python -m cqdev generate``)."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.runner import main as service_main

from cqregistry.wiring import SPEC

SANDBOX_COMMANDS = frozenset({"load-sandbox", "sandbox-vins"})


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in SANDBOX_COMMANDS:
        # imported here: the service commands need no adjudication stubs or roster
        from cqregistry.entrypoints import loader

        return loader.main(argv)
    return service_main(SPEC, argv)
