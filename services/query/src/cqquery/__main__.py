"""``python -m cqquery migrate|serve|relay|consume|run``."""

from cqcommon.runner import main

from cqquery.wiring import SPEC

raise SystemExit(main(SPEC))
