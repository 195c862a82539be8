"""Helpers shared by the scripts under ``bench/``: load generators and the cluster launcher.

A package (not a ``bench/*.py`` file) so that ``make bench`` (``python -m cqdev bench``,
which runs every ``bench/*.py``) does not mistake it for a benchmark. The scripts run as
``python bench/<name>.py``, so ``bench/`` is on ``sys.path`` and ``import benchlib`` works.

- :class:`LoadResult` — what one load run measured;
- :func:`load_with_wrk` — ``wrk`` (one thread) against one URL or, with a Lua script,
  against a rotation of requests; p50/p99 are wrk's own (``--latency``);
- :func:`load_with_httpx` — the fallback when ``wrk`` is not installed: asyncio + httpx in
  this process, a much slower client, so its absolute numbers are only a floor;
- :func:`wrk_rotation_script` — a wrk Lua script cycling through (path, headers) pairs;
- :class:`Cluster` — ``python -m cqdev run`` (what ``make run`` runs) on free ports with
  extra env vars, until ready; stops everything it started on exit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cqdev.stack import ManagedProcess, free_port, start_process

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """One load run: request count, failures (non-2xx and socket errors), latencies."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    #: percentiles reported by the load generator itself (wrk), p -> ms
    reported_pcts: dict[float, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        """Latency percentile ``p`` (0..1) in ms: wrk's own figure when it gave one."""
        if p in self.reported_pcts:
            return self.reported_pcts[p]
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def report(name: str, r: LoadResult) -> None:
    print(
        f"{name:<28} {r.rate:8.0f} req/s  p50 {r.pct(0.50):6.1f} ms  p99 {r.pct(0.99):6.1f} ms"
        f"  errors {r.errors}/{r.requests}"
    )


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def parse_wrk(out: str, seconds: float) -> LoadResult:
    """A :class:`LoadResult` from ``wrk --latency`` output."""
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if found is None:
        raise ValueError(f"unexpected wrk output:\n{out}")
    requests = int(found.group(1))
    elapsed = _ms(found.group(2) + found.group(3)) / 1000 or seconds
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    pcts = {
        int(p) / 100: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, flags=re.M)
    }
    # a stand-in distribution that reproduces wrk's reported percentiles
    latencies = [pcts.get(0.5, 0.0)] * 50 + [pcts.get(0.75, 0.0)] * 25
    latencies += [pcts.get(0.9, 0.0)] * 15 + [pcts.get(0.99, 0.0)] * 10
    return LoadResult(requests, errors, elapsed, latencies, pcts)


def load_with_wrk(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    seconds: float,
    concurrency: int,
    script: Path | None = None,
) -> LoadResult:
    """Drive ``url`` with wrk (1 thread); ``script`` is a wrk Lua script (e.g. a rotation)."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += ["--timeout", "10s"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return parse_wrk(out, seconds)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_rotation_script(requests: Sequence[tuple[str, Mapping[str, str]]], path: Path) -> Path:
    """Write a wrk Lua script that sends GET ``(path, headers)`` pairs round-robin."""
    entries = []
    for target, headers in requests:
        hdrs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        entries.append(f"  {{{_lua_string(target)}, {{{hdrs}}}}},")
    path.write_text(
        "-- generated by bench/benchlib: GET each (path, headers) in turn\n"
        "local items = {\n" + "\n".join(entries) + "\n}\n"
        "local n = #items\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % n + 1\n"
        "  local item = items[i]\n"
        '  return wrk.format("GET", item[1], item[2])\n'
        "end\n",
        "utf-8",
    )
    return path


# --------------------------------------------------------------------------------------
# httpx fallback
# --------------------------------------------------------------------------------------


async def load_with_httpx(
    base_url: str,
    requests: Sequence[tuple[str, Mapping[str, str]]],
    *,
    seconds: float,
    concurrency: int,
) -> LoadResult:
    """GET ``(path, headers)`` pairs round-robin from ``concurrency`` asyncio workers."""
    latencies: list[float] = []
    errors = 0
    rotation = itertools.cycle(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        for target, headers in itertools.islice(rotation, 20):  # warm up connections
            await client.get(target, headers=dict(headers))
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                target, headers = next(rotation)
                t0 = time.perf_counter()
                try:
                    r = await client.get(target, headers=dict(headers))
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, latencies)


async def load(
    url: str, headers: dict[str, str], *, seconds: float, concurrency: int
) -> LoadResult:
    """One URL with fixed headers through the httpx loader (cluster_slice's interface)."""
    split = httpx.URL(url)
    base = f"{split.scheme}://{split.netloc.decode()}"
    target = split.raw_path.decode()
    return await load_with_httpx(
        base, [(target, headers)], seconds=seconds, concurrency=concurrency
    )


def drive(
    base_url: str,
    requests: Sequence[tuple[str, Mapping[str, str]]],
    *,
    seconds: float,
    concurrency: int,
    work_dir: Path,
) -> LoadResult:
    """Load the rotation ``requests`` with wrk when installed, else with httpx."""
    if have_wrk():
        if len(requests) == 1:
            target, headers = requests[0]
            return load_with_wrk(
                base_url + target, headers, seconds=seconds, concurrency=concurrency
            )
        script = wrk_rotation_script(requests, work_dir / f"rotation-{len(requests)}.lua")
        first = requests[0][0]
        return load_with_wrk(
            base_url + first, seconds=seconds, concurrency=concurrency, script=script
        )
    return asyncio.run(
        load_with_httpx(base_url, requests, seconds=seconds, concurrency=concurrency)
    )


# --------------------------------------------------------------------------------------
# the cluster, as `make run` starts it
# --------------------------------------------------------------------------------------

SERVICE_PREFIXES = ("QUERY", "ADJUDICATION", "PAYMENT", "FOLLOW", "REGISTRY", "JOBS")


class ClusterError(RuntimeError):
    """The launcher exited or did not become ready in time."""


class Cluster:
    """``python -m cqdev run --ready-file`` on free ports; a context manager.

    ``env`` is added to this process's environment (e.g. ``DATABASE_URL``,
    ``REDIS_URL``, ``QUERY_CACHE_TTL_S``). The launcher runs in its own session with a
    parent-death signal (:func:`cqdev.stack.start_process`); on exit it gets SIGTERM (it
    stops its children and whatever stack it started), then SIGKILL after
    ``stop_grace_s``, and any descendant still alive is killed too.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        ready_timeout_s: float = 300.0,
        stop_grace_s: float = 60.0,
        log_path: Path | None = None,
    ) -> None:
        self.env = dict(os.environ)
        self.env.setdefault("LOG_LEVEL", "WARNING")
        # a daytime load: the nightly jobs would start at once in the 22:00-00:30 window
        # (Asia/Shanghai) and take the cores (rendering every decision notice, ...)
        self.env.setdefault("JOBS_SCHEDULER", "false")
        self.env["GATEWAY_PORT"] = str(free_port())
        self.env["FAKE_ALIPAY_PORT"] = str(free_port())
        for name in SERVICE_PREFIXES:
            self.env[f"{name}_SERVICE_ADDR"] = f"127.0.0.1:{free_port()}"
        self.env.update(env or {})
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.log_path = log_path
        self.proc: ManagedProcess | None = None
        self.info: dict[str, Any] = {}
        self.startup_s = 0.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def gateway_url(self) -> str:
        return str(self.info["gateway_url"])

    def pid_of(self, name: str) -> int:
        return int(self.info["pids"][name])

    def start(self) -> Cluster:
        self._tmp = tempfile.TemporaryDirectory(prefix="cqbench-")
        ready_file = Path(self._tmp.name) / "ready.json"
        t0 = time.perf_counter()
        self.proc = start_process(
            "cqdev-run",
            [sys.executable, "-m", "cqdev", "run", "--ready-file", str(ready_file)],
            log_path=self.log_path,
            env=self.env,
            cwd=ROOT,
        )
        deadline = t0 + self.ready_timeout_s
        while not ready_file.exists():
            if not self.proc.alive():
                tail = self.proc.log_tail(30)
                raise ClusterError(
                    f"the launcher exited with code {self.proc.returncode()} before it was"
                    f" ready (log {self.log_path}):\n{tail}"
                )
            if time.perf_counter() > deadline:
                raise ClusterError(f"not ready after {self.ready_timeout_s:.0f}s")
            time.sleep(0.1)
        self.info = json.loads(ready_file.read_text("utf-8"))
        self.startup_s = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stop(self.stop_grace_s)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
