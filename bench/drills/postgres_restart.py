"""Fault drill ``postgres-restart``: ``python bench/drills/postgres_restart.py [--rate N] [--fault-seconds S]``.

The same as ``python bench/drills/run.py --drill postgres-restart``; see run.py for what it does
and prints.
"""

from __future__ import annotations

import sys

from run import main

if __name__ == "__main__":
    sys.exit(main(["--drill", "postgres-restart", *sys.argv[1:]]))
