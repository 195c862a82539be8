"""The benchmarks' process sampler (``bench/query_read.py``): the process trees it finds in
one pass over /proc, and the peak RSS it reads off them. The figures it samples are printed
by the benchmarks, never asserted on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.query_read import ProcessSampler, process_trees

# a child that starts a grandchild holding ~64 MB, and says when it is there
HOLDER = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c",
    "import sys, time; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); "
    "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
grandchild.stdout.readline()
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def test_process_trees_are_each_root_with_all_its_descendants() -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        me = os.getpid()
        trees = process_trees({"me": me, "child": child.pid, "gone": 2**22 + 7})
        assert set(trees["me"]) >= {me, child.pid, grandchild}
        assert sorted(trees["child"]) == sorted([child.pid, grandchild])
        assert trees["gone"] == [2**22 + 7]  # a pid that is not there: itself, no tree
        expected = {me} | {p.pid for p in psutil.Process(me).children(recursive=True)}
        assert set(trees["me"]) == expected
    finally:
        for p in psutil.Process(child.pid).children(recursive=True):
            p.kill()
        child.kill()
        child.wait()


def test_the_sampler_reads_the_peak_rss_of_a_whole_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()
        with ProcessSampler({"child": child.pid}, interval_s=0.05) as sampler:
            deadline = time.monotonic() + 10
            while sampler.peak_mb["child"] < 64 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert sampler.peak_mb["child"] >= 64  # the grandchild's pages count
    finally:
        for p in psutil.Process(child.pid).children(recursive=True):
            p.kill()
        child.kill()
        child.wait()
