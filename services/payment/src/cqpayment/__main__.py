"""``python -m cqpayment migrate|serve|relay|consume|run``."""

from cqcommon.runner import main

from cqpayment.wiring import SPEC

raise SystemExit(main(SPEC))
