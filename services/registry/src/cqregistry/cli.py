"""Command line of the registry service: the common service commands plus the sandbox
roster loader (the bulk generator of synthetic data is dev tooling: ``python -m cqdev
generate``)."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.runner import main as service_main

from cqregistry.wiring import SPEC


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "load-sandbox":
        from cqregistry import loader

        return loader.main(argv)
    return service_main(SPEC, argv)
