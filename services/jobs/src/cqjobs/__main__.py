"""``python -m cqjobs jobs run|scheduler|serve|run|migrate`` (see ``entrypoints.cli``)."""

from cqjobs.entrypoints.cli import main

raise SystemExit(main())
