"""Fault drill ``consumer-kill``: ``python bench/drills/consumer_kill.py [--rate N] [--fault-seconds S]``.

The same as ``python bench/drills/run.py --drill consumer-kill``; see run.py for what it does
and prints.
"""

from __future__ import annotations

import sys

from run import main

if __name__ == "__main__":
    sys.exit(main(["--drill", "consumer-kill", *sys.argv[1:]]))
