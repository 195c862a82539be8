"""``python -m cqfollow migrate|serve|relay|consume|run``."""

from cqcommon.runner import main

from cqfollow.wiring import SPEC

raise SystemExit(main(SPEC))
