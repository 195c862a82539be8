"""Command line of the registry service: the common service commands plus the sandbox
roster loader and the bulk generator."""

from __future__ import annotations

from collections.abc import Sequence

from cqcommon.runner import main as service_main

from cqregistry.wiring import SPEC


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in ("load-sandbox", "generate"):
        from cqregistry import loader

        return loader.main(argv)
    return service_main(SPEC, argv)
