"""Fault drill ``broker-pause``: ``python bench/drills/broker_pause.py [--rate N] [--fault-seconds S]``.

The same as ``python bench/drills/run.py --drill broker-pause``; see run.py for what it does
and prints.
"""

from __future__ import annotations

import sys

from run import main

if __name__ == "__main__":
    sys.exit(main(["--drill", "broker-pause", *sys.argv[1:]]))
