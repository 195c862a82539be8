"""``python -m cqregistry migrate|serve|relay|consume|run|load-sandbox``."""

import sys

from cqregistry.cli import main

raise SystemExit(main(sys.argv[1:]))
