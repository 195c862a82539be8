"""``python -m cqregistry migrate|serve|relay|consume|run|load-sandbox|sandbox-vins``."""

import sys

from cqregistry.entrypoints.cli import main

raise SystemExit(main(sys.argv[1:]))
