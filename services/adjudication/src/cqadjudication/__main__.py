"""``python -m cqadjudication migrate|serve|relay|consume|run``."""

from cqcommon.runner import main

from cqadjudication.wiring import SPEC

raise SystemExit(main(SPEC))
