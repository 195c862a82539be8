"""Benchmark: `GET /api/v1/violations?vehicle_id=` at 100k and 1M vehicles, cached and uncached.

For each size it prepares a dataset database on the local PostgreSQL (``cqbench_100k``,
``cqbench_1m``: ``python -m cqdev.datagen --vehicles N --violations-per-vehicle 5``,
i.e. ~5 violations a vehicle, so 1M vehicles is ~5M violations), **reused** when a
previous run finished it (a marker row in ``public.cqbench_dataset_v3`` is written only after
the generator exited 0; a database without it is dropped and generated again). Then it
starts the whole cluster twice the way `make run` does (``python -m cqdev run``), on free
ports, with ``DATABASE_URL`` pointing at that dataset and ``REDIS_URL`` at a redis-server
of its own (so neither the sandbox database ``cqtraffic`` nor the machine's Redis is ever
touched):

1. ``QUERY_CACHE_TTL_S=0`` (the query service's Redis cache off): ``GET /healthz`` (the
   bare FastAPI route: this machine's ceiling), then the **uncached** case — 2,000 random
   owners, each logged in with the sandbox Alipay login, each asking for their own
   vehicle's violations, round-robin;
2. the cache on (the default TTL): ``GET /healthz`` again, a warm-up pass, then the
   **cached** case — 50 hot owners, round-robin.

The load generator is ``wrk`` (1 thread, ``--concurrency`` connections, a Lua script
rotating through (token, vehicle) pairs, ``--latency`` for p50/p99), or the slower httpx
loader when wrk is missing (then absolute numbers are only a floor). It runs on the same
machine as the cluster. During each load the query service's RSS (VmRSS of the process and
its descendants) is sampled and the peak printed. The table gives req/s, p50, p99, errors,
the ratio to the bare route of the same cluster run (what compares across machines) and
PASS/MISS beside each target of the issue (it asserts nothing):

- cached ≥ 1,500 req/s at p99 ≤ 25 ms; uncached ≥ 800 req/s at p99 ≤ 40 ms;
- p99 at 1M within 1.2x of p99 at 100k; query service RSS ≤ 150 MB under load.

    .venv/bin/python bench/query_read.py [--sizes 100k,1m] [--seconds 12] [--concurrency 16]
        [--skip-generate] [--prepare-only] [--profile]

``--prepare-only`` only makes sure the datasets exist (generation runs at ~20k rows/s,
about 15-30 minutes for 1M); ``--skip-generate`` fails instead of generating a missing
one. ``--profile`` runs ``py-spy record`` on the gateway and the query service during each
measured load (py-spy must be installed) and prints their hottest frames. Every process it
starts is stopped at the end, also on Ctrl-C, SIGTERM or an error. Logs and profiles go
to ``.local/bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil
import psycopg
import redis
from cqdev.stack import (
    create_database,
    drop_database,
    local_dir,
    start_own_redis,
    start_process,
    with_database,
)

# `python bench/query_read.py` puts bench/ on sys.path, not the repo root; mypy (run from
# the root) resolves `bench.benchlib` as it is written here
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import ROOT, Cluster, LoadResult, drive, have_wrk

DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "cqbench_"
SANDBOX_DATABASE = "cqtraffic"  # `make run`'s database: never ours to touch
VIOLATIONS_PER_VEHICLE = 5.0
SEED = 1
USER_SEED = 20240601  # which owners are picked: the same ones on every run
# The marker table's name carries the data set's version: one made by an older generator
# (v1: before adjudication's persons copy and points ledgers; v2: before the follow
# service's registry copy) has no marker here and is generated again.
MARKER_TABLE = "public.cqbench_dataset_v3"

CACHED_TARGET = (1500.0, 25.0)  # req/s at least, p99 ms at most
UNCACHED_TARGET = (800.0, 40.0)
P99_GROWTH_TARGET = 1.2  # p99(1M) / p99(100k) at most
RSS_TARGET_MB = 150.0
VIOLATIONS_PATH = "/api/v1/violations"
PROFILE_RATE_HZ = 100


def bench_dir() -> Path:
    path = local_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dataset:
    label: str  # "100k", "1m"
    vehicles: int
    server: str  # a postgresql:// URL of the server (any database)

    @property
    def dbname(self) -> str:
        return f"{DB_PREFIX}{self.label}"

    @property
    def url(self) -> str:
        return with_database(self.server, self.dbname)


def parse_size(text: str) -> tuple[str, int]:
    """``"100k"`` -> ("100k", 100000); ``"1m"`` -> ("1m", 1000000)."""
    match = re.fullmatch(r"(\d+)([km]?)", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100k, 1m, 20000)")
    number, unit = int(match.group(1)), match.group(2)
    return match.group(0), number * {"": 1, "k": 1_000, "m": 1_000_000}[unit]


def read_marker(ds: Dataset) -> dict[str, Any] | None:
    """The dataset's completion marker, or None (no database, no marker, other arguments)."""
    try:
        with psycopg.connect(ds.url, connect_timeout=5, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (MARKER_TABLE,)).fetchone()
            if exists is None or exists[0] is None:
                return None
            cur = conn.execute(
                f"SELECT vehicles, violations_per_vehicle, seed, generated_on, seconds,"
                f" vehicle_rows, violation_rows, person_rows FROM {MARKER_TABLE}"
                " WHERE vehicles = %s AND violations_per_vehicle = %s AND seed = %s",
                (ds.vehicles, VIOLATIONS_PER_VEHICLE, SEED),
            )
            row = cur.fetchone()
            if row is None or cur.description is None:
                return None
            return dict(zip([c.name for c in cur.description], row, strict=True))
    except psycopg.OperationalError:
        return None  # e.g. the database does not exist yet


def _progress_note(log_path: Path) -> str:
    """The generator's last progress-bar state (tqdm writes it to the log with \\r)."""
    try:
        with log_path.open("rb") as f:
            f.seek(max(0, log_path.stat().st_size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return "?"
    states = [s.strip() for s in re.split(r"[\r\n]", tail) if s.strip().startswith("generate")]
    return states[-1] if states else "starting"


def generate(ds: Dataset) -> dict[str, Any]:
    """Drop and recreate the dataset database, run the generator, analyse, write the marker."""
    if not ds.dbname.startswith(DB_PREFIX) or ds.dbname == SANDBOX_DATABASE:
        raise RuntimeError(f"refusing to regenerate {ds.dbname!r}")
    log_path = bench_dir() / f"generate-{ds.label}.log"
    print(
        f"[{ds.label}] generating {ds.vehicles:,} vehicles x ~{VIOLATIONS_PER_VEHICLE:g}"
        f" violations into {ds.dbname} (log {log_path}) ...",
        flush=True,
    )
    drop_database(ds.url, ds.dbname)
    create_database(ds.url, ds.dbname)
    argv = [
        sys.executable, "-m", "cqdev.datagen",
        "--vehicles", str(ds.vehicles),
        "--violations-per-vehicle", f"{VIOLATIONS_PER_VEHICLE:g}",
        "--seed", str(SEED),
    ]  # fmt: skip
    env = dict(os.environ, DATABASE_URL=ds.url, LOG_LEVEL="WARNING")
    t0 = time.perf_counter()
    proc = start_process(f"generate-{ds.label}", argv, log_path=log_path, env=env, cwd=ROOT)
    try:
        next_note = t0 + 60
        while proc.alive():
            time.sleep(1)
            if time.perf_counter() >= next_note:
                next_note += 60
                print(
                    f"[{ds.label}]   {time.perf_counter() - t0:5.0f} s: {_progress_note(log_path)}",
                    flush=True,
                )
        code = proc.returncode()
    finally:
        proc.stop(10)
    seconds = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(
            f"generator exited with {code} after {seconds:.0f}s; log {log_path}:\n"
            + proc.log_tail(30)
        )
    for line in log_path.read_text("utf-8", errors="replace").splitlines():
        if line.startswith("generate:"):
            print(f"[{ds.label}]   {line}")
    print(f"[{ds.label}] generated in {seconds:.0f} s; VACUUM ANALYZE ...", flush=True)
    with psycopg.connect(ds.url, autocommit=True) as conn:
        for table in ("persons", "vehicles", "licences", "violations"):
            conn.execute(f"VACUUM ANALYZE query.{table}")
        # adjudication answers every page's eligibility question: its planner needs stats too
        for table in ("persons", "vehicles", "licences", "violations", "points_ledger",
                      "points_entries"):  # fmt: skip
            conn.execute(f"VACUUM ANALYZE adjudication.{table}")
        counts = [
            int(conn.execute(f"SELECT count(*) FROM query.{t}").fetchone()[0])  # type: ignore[index]
            for t in ("vehicles", "violations", "persons")
        ]
        if counts[0] < ds.vehicles:
            raise RuntimeError(f"{ds.dbname}: only {counts[0]:,} vehicles after generation")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (vehicles int, violations_per_vehicle"
            " float8, seed int, generated_on timestamptz, seconds float8, vehicle_rows bigint,"
            " violation_rows bigint, person_rows bigint)"
        )
        conn.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, %s, now(), %s, %s, %s, %s)",
            (ds.vehicles, VIOLATIONS_PER_VEHICLE, SEED, seconds, *counts),
        )
    marker = read_marker(ds)
    assert marker is not None
    return marker


def prepare(ds: Dataset, *, skip_generate: bool) -> dict[str, Any]:
    """The dataset's marker, generating the dataset first when it is missing or unfinished."""
    marker = read_marker(ds)
    if marker is not None:
        print(
            f"[{ds.label}] reusing {ds.dbname}: {marker['vehicle_rows']:,} vehicles,"
            f" {marker['violation_rows']:,} violations (generated {marker['generated_on']:%F}"
            f" in {marker['seconds']:.0f} s)"
        )
        return marker
    if skip_generate:
        raise SystemExit(
            f"{ds.dbname} is missing or unfinished and --skip-generate was given;"
            " run once without it"
        )
    return generate(ds)


def pick_owners(ds: Dataset, count: int) -> list[tuple[str, str]]:
    """``count`` (alipay_user_id, vehicle_id) pairs of synthetic owners, the same every run.

    Synthetic person ``i`` owns vehicle ``i`` and has the Alipay id ``20881{i:011d}`` when
    they use the mini-program (~60 %); read from the query service's read model.
    """
    rng = random.Random(USER_SEED)
    candidates = [
        f"20881{i:011d}" for i in rng.sample(range(ds.vehicles), min(ds.vehicles, 4 * count))
    ]
    with psycopg.connect(ds.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.alipay_user_id, v.vehicle_id::text FROM query.persons p"
            " JOIN query.vehicles v ON v.owner_person_id = p.person_id"
            " WHERE p.alipay_user_id = ANY(%s)",
            (candidates,),
        ).fetchall()
    by_user = {str(u): str(v) for u, v in rows}
    picked = [(u, by_user[u]) for u in candidates if u in by_user][:count]
    if len(picked) < count:
        raise RuntimeError(f"{ds.dbname}: only {len(picked)} owners with an Alipay id found")
    return picked


# --------------------------------------------------------------------------------------
# logins and request rotations
# --------------------------------------------------------------------------------------

Request = tuple[str, Mapping[str, str]]


async def _login_all(
    gateway: str, owners: Sequence[tuple[str, str]], concurrency: int
) -> list[Request]:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:

        async def one(user_id: str, vehicle_id: str) -> Request:
            async with gate:
                r = await client.post(
                    "/api/v1/auth/alipay", json={"auth_code": f"sandbox:{user_id}"}
                )
                r.raise_for_status()
                headers = {"Authorization": f"Bearer {r.json()['token']}"}
                return f"{VIOLATIONS_PATH}?vehicle_id={vehicle_id}", headers

        requests = await asyncio.gather(*(one(u, v) for u, v in owners))
        # sanity: a few of them answer 200 with the owner's violations, each carrying the
        # owner's online-handling hint (R-Q-3), so the load exercises the hint path too
        sizes = []
        hints: collections.Counter[str] = collections.Counter()
        for target, headers in requests[:5]:
            r = await client.get(target, headers=dict(headers))
            if r.status_code != 200:
                raise RuntimeError(f"GET {target} -> {r.status_code}: {r.text[:300]}")
            violations = r.json()["violations"]
            sizes.append(len(violations))
            for v in violations:
                hint = v.get("online_handling")
                if hint is None:
                    raise RuntimeError(f"GET {target}: {v['violation_id']} has no online_handling")
                hints[f"{hint['availability']}:{hint.get('reason_code') or hint.get('route')}"] += 1
    print(f"    logged in {len(requests)} owners; first answers list {sizes} violations")
    print(f"    their online-handling hints: {dict(sorted(hints.items()))}")
    return list(requests)


def login_all(gateway: str, owners: Sequence[tuple[str, str]]) -> list[Request]:
    return asyncio.run(_login_all(gateway, owners, 16))


# --------------------------------------------------------------------------------------
# memory sampling and profiling
# --------------------------------------------------------------------------------------


def vm_rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` (kB) from /proc/<pid>/status; 0 when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, flags=re.M)
    return int(match.group(1)) if match else 0


def process_trees(roots: Mapping[str, int]) -> dict[str, list[int]]:
    """Each root pid with its descendants, from ONE pass over /proc for all of them.

    ``psutil.Process.children(recursive=True)`` reads every process's ``stat`` on each
    call: once per root every 0.1 s, a round of seven roots cost 16-36 CPU ms here, all
    of it billed to the load generator and taken from the cluster it measures (in the
    handling bench the load generator went from 0.23-0.25 to 0.16 cores without it). A
    lookup of all the trees at once costs ~10 ms, a sample of their RSS ~0.6 ms.
    """
    kids: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info.get("ppid")
        if ppid is not None:
            kids.setdefault(ppid, []).append(proc.pid)
    trees: dict[str, list[int]] = {}
    for name, root in roots.items():
        tree, todo = [], [root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(kids.get(pid, ()))
        trees[name] = tree
    return trees


def tree_rss_mb(pids: Sequence[int]) -> float:
    """RSS of ``pids`` together (a process tree), MB; a pid gone counts 0."""
    return sum(vm_rss_kb(p) for p in pids) / 1024


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants so far."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        for p in (proc, *proc.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


class ProcessSampler:
    """While active: peak RSS (:func:`tree_rss_mb`, sampled every ``interval_s`` in a
    thread) and CPU used (in cores) of some pids, and how busy the whole machine was.

    The trees (a pid and its descendants) are looked up again every ``trees_every_s``,
    not at every sample: the lookup reads all of /proc, a sample only each tree's
    ``status`` files."""

    def __init__(
        self, pids: Mapping[str, int], interval_s: float = 0.1, trees_every_s: float = 2.0
    ) -> None:
        self.pids = dict(pids)
        self.interval_s = interval_s
        self.trees_every_s = trees_every_s
        self.peak_mb: dict[str, float] = dict.fromkeys(self.pids, 0.0)
        self.cores: dict[str, float] = dict.fromkeys([*self.pids, "machine"], 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0

    def _run(self) -> None:
        trees: dict[str, list[int]] = {}
        looked_up = float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - looked_up >= self.trees_every_s:
                trees, looked_up = process_trees(self.pids), time.monotonic()
            for name, tree in trees.items():
                self.peak_mb[name] = max(self.peak_mb[name], tree_rss_mb(tree))
            self._stop.wait(self.interval_s)

    def _cpu(self) -> dict[str, float]:
        cpu = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}
        cpu["machine"] = _machine_busy_s()
        return cpu

    def __enter__(self) -> ProcessSampler:
        self._cpu0, self._t0 = self._cpu(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        wall = time.perf_counter() - self._t0
        for name, used in self._cpu().items():
            self.cores[name] = (used - self._cpu0[name]) / wall if wall else 0.0


def find_service_pid(cluster: Cluster, name: str, module: str) -> int:
    """The pid of service ``name``: from the ready file, checked against its command line."""
    pid = cluster.pid_of(name)
    with contextlib.suppress(psutil.Error):
        if any(module in part for part in psutil.Process(pid).cmdline()):
            return pid
    # fall back to a search among the launcher's descendants
    launcher = psutil.Process(int(cluster.info["launcher_pid"]))
    for child in launcher.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(module in part for part in child.cmdline()):
                return child.pid
    raise RuntimeError(f"no {module} process among the launcher's children")


@contextlib.contextmanager
def profiled(
    enabled: bool, pids: Mapping[str, int], seconds: float | None, tag: str
) -> Iterator[None]:
    """While active, ``py-spy record --format raw`` on each pid; prints their top frames.

    ``seconds``: how long the measured load lasts; None when it is not known beforehand
    (a fixed amount of work): py-spy then records until the block ends and is stopped
    with SIGINT, on which it writes its profile.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not enabled or not Path(spy).exists():
        if enabled:
            print("    (py-spy not installed: no profile)")
        yield
        return
    out_dir = bench_dir() / "profiles"
    out_dir.mkdir(exist_ok=True)
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, pid in pids.items():
        raw = out_dir / f"{tag}-{name}.txt"
        # --gil: only samples holding the GIL, i.e. Python work, never an idle thread
        argv = [spy, "record", "--gil", "--format", "raw", "-r", str(PROFILE_RATE_HZ)]
        if seconds is not None:
            argv += ["-d", str(int(seconds))]
        argv += ["-o", str(raw), "--pid", str(pid)]
        procs[name] = (
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            raw,
        )
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = seconds if seconds is not None else time.perf_counter() - started
        for name, (proc, raw) in procs.items():
            if seconds is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(elapsed + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if raw.exists():
                print_top_frames(f"{tag} {name}", raw, int(elapsed * PROFILE_RATE_HZ))


def print_top_frames(title: str, raw: Path, possible: int, top: int = 12) -> None:
    """Self and inclusive shares of the hottest frames of a py-spy raw (``--gil``) profile.

    ``possible`` is the number of samples a process holding the GIL all the time would
    give; samples / possible is how busy its Python side was.
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text("utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return
    print(
        f"    profile {title}: GIL held in {100 * total / possible:.0f}% of samples"
        f" ({raw}); shares below are of those samples"
    )
    print("      self%  frame (self: Python frame on top; time in C code it called counts here)")
    for frame, n in own.most_common(top):
        print(f"      {100 * n / total:5.1f}  {frame}")
    print("      incl%  frame (inclusive, without the roots nearly every sample passes through)")
    shown = 0
    for frame, n in inclusive.most_common():
        if n / total > 0.9:
            continue
        print(f"      {100 * n / total:5.1f}  {frame}")
        shown += 1
        if shown == top * 2:
            break


def _short(frame: str) -> str:
    """``func (path/to/mod.py:12)`` -> ``func (mod.py)``: per function, not per line."""
    match = re.fullmatch(r"(.*) \((.*?):\d+\)", frame)
    if match is None:
        return frame
    func, path = match.groups()
    parts = Path(path).parts
    where = "/".join(parts[-2:]) if "site-packages" in path or "src" in parts else parts[-1]
    return f"{func} ({where})"


# --------------------------------------------------------------------------------------
# one cluster run
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    size: str
    case: str
    result: LoadResult
    bare_rate: float
    target: tuple[float, float] | None = None
    query_rss_mb: float = 0.0
    gateway_rss_mb: float = 0.0

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        rate, p99 = self.target
        ok = self.result.rate >= rate and self.result.pct(0.99) <= p99 and not self.result.errors
        return "PASS" if ok else "MISS"


@dataclasses.dataclass
class Options:
    seconds: float
    concurrency: int
    users: int
    hot_users: int
    profile: bool
    work_dir: Path


def measure(
    name: str,
    cluster: Cluster,
    requests: Sequence[Request],
    opts: Options,
    *,
    warmup_s: float,
    pids: Mapping[str, int],
    profile_tag: str | None = None,
) -> tuple[LoadResult, dict[str, float]]:
    """Warm up, then load ``requests`` for ``opts.seconds`` while sampling RSS."""
    gw = cluster.gateway_url
    if warmup_s > 0:
        drive(gw, requests, seconds=warmup_s, concurrency=opts.concurrency, work_dir=opts.work_dir)
    with (
        ProcessSampler(pids) as rss,
        profiled(
            opts.profile and profile_tag is not None,
            pids,
            max(1.0, opts.seconds - 2),
            profile_tag or name,
        ),
    ):
        result = drive(
            gw, requests, seconds=opts.seconds, concurrency=opts.concurrency, work_dir=opts.work_dir
        )
    print(
        f"    {name:<10} {result.rate:8.0f} req/s  p50 {result.pct(0.5):6.1f} ms"
        f"  p99 {result.pct(0.99):6.1f} ms  errors {result.errors}/{result.requests}"
        f"  peak RSS query {rss.peak_mb['query']:.0f} MB, gateway {rss.peak_mb['gateway']:.0f} MB",
        flush=True,
    )
    print(
        f"    {'':<10} CPU in cores: gateway {rss.cores['gateway']:.2f}, query"
        f" {rss.cores['query']:.2f}, whole machine {rss.cores['machine']:.2f} of {os.cpu_count()}"
        " (the rest: wrk, PostgreSQL, Redis, other services)",
        flush=True,
    )
    return result, dict(rss.peak_mb)


def redis_keys(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def run_cluster_case(
    ds: Dataset,
    *,
    cached: bool,
    owners: Sequence[tuple[str, str]],
    redis_url: str,
    opts: Options,
) -> list[Row]:
    """One cluster on the dataset (cache on or off): bare route, then the case."""
    case = "cached" if cached else "uncached"
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()  # our own redis-server: nobody else's data
    finally:
        client.close()
    env = {"DATABASE_URL": ds.url, "REDIS_URL": redis_url}
    if not cached:
        env["QUERY_CACHE_TTL_S"] = "0"
    log_path = bench_dir() / f"cluster-{ds.label}-{case}.log"
    print(
        f"[{ds.label}] {case}: starting the cluster (QUERY_CACHE_TTL_S="
        f"{env.get('QUERY_CACHE_TTL_S', 'default')}, log {log_path}) ...",
        flush=True,
    )
    with Cluster(env, log_path=log_path) as cluster:
        print(f"    ready in {cluster.startup_s:.1f} s at {cluster.gateway_url}", flush=True)
        pids = {
            "query": find_service_pid(cluster, "query", "cqquery"),
            "gateway": find_service_pid(cluster, "gateway", "cqgateway"),
        }
        requests = login_all(cluster.gateway_url, owners)
        warm = min(5.0, max(2.0, opts.seconds / 3))
        bare, bare_rss = measure(
            "bare", cluster, [("/healthz", {})], opts, warmup_s=warm, pids=pids
        )
        keys_before = redis_keys(redis_url)
        result, rss = measure(
            case,
            cluster,
            requests,
            opts,
            warmup_s=warm,
            pids=pids,
            profile_tag=f"{ds.label}-{case}",
        )
        keys_after = redis_keys(redis_url)
        print(f"    redis keys: {keys_before} before the {case} load, {keys_after} after")
    target = CACHED_TARGET if cached else UNCACHED_TARGET
    return [
        Row(ds.label, f"bare ({'cache on' if cached else 'cache off'})", bare, bare.rate,
            None, bare_rss["query"], bare_rss["gateway"]),
        Row(ds.label, case, result, bare.rate, target, rss["query"], rss["gateway"]),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(rows: Sequence[Row]) -> None:
    print()
    head = (
        f"{'size':<5} {'case':<17} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>13}"
        f" {'/bare':>6} {'query RSS':>9}  {'target':<27} result"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        r = row.result
        target = (
            f">= {row.target[0]:,.0f} req/s, p99 <= {row.target[1]:.0f} ms" if row.target else ""
        )
        print(
            f"{row.size:<5} {row.case:<17} {r.rate:7.0f} {r.pct(0.5):7.1f} {r.pct(0.99):7.1f}"
            f" {f'{r.errors}/{r.requests}':>13} {r.rate / row.bare_rate if row.bare_rate else 0:6.2f}"
            f" {row.query_rss_mb:6.0f} MB  {target:<27} {row.verdict}"
        )
    print()
    by = {(row.size, row.case): row for row in rows}
    sizes = list(dict.fromkeys(row.size for row in rows))
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        for case in ("uncached", "cached"):
            a, b = by.get((small, case)), by.get((big, case))
            if a and b and a.result.pct(0.99):
                growth = b.result.pct(0.99) / a.result.pct(0.99)
                print(
                    f"p99({big}) / p99({small}) {case:<8}: {b.result.pct(0.99):.1f} /"
                    f" {a.result.pct(0.99):.1f} ms = {growth:.2f}  (target <= {P99_GROWTH_TARGET})"
                    f"  {_verdict(growth <= P99_GROWTH_TARGET)}"
                )
    loaded = [row for row in rows if row.target is not None]
    if loaded:
        peak = max(loaded, key=lambda row: row.query_rss_mb)
        print(
            f"peak query service RSS under load: {peak.query_rss_mb:.0f} MB ({peak.size}"
            f" {peak.case}; target <= {RSS_TARGET_MB:.0f} MB)"
            f"  {_verdict(peak.query_rss_mb <= RSS_TARGET_MB)}"
        )
        overall = max(row.query_rss_mb for row in rows)
        print(f"peak query service RSS over every load (the bare route's too): {overall:.0f} MB")
        gw = max(row.gateway_rss_mb for row in loaded)
        print(f"peak gateway RSS under load: {gw:.0f} MB (no target)")


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated (default 100k,1m)")
    parser.add_argument("--seconds", type=float, default=12.0, help="per measured load")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections")
    parser.add_argument("--users", type=int, default=2000, help="owners in the uncached case")
    parser.add_argument("--hot-users", type=int, default=50, help="owners in the cached case")
    parser.add_argument(
        "--cases", default="uncached,cached", help="which cluster runs (default both)"
    )
    parser.add_argument(
        "--skip-generate", action="store_true", help="fail instead of generating a dataset"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="only make sure the datasets exist"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the measured loads")
    parser.add_argument(
        "--pg-server",
        default=DEFAULT_PG_SERVER,
        help=f"PostgreSQL server for the cqbench_* databases (default {DEFAULT_PG_SERVER})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(cases) - {"uncached", "cached"}:
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    datasets = sorted(
        (Dataset(label, n, args.pg_server) for label, n in sizes), key=lambda d: d.vehicles
    )
    signal.signal(signal.SIGTERM, _sigterm)  # clean up on SIGTERM as on Ctrl-C
    try:
        markers = {ds.label: prepare(ds, skip_generate=args.skip_generate) for ds in datasets}
        if args.prepare_only:
            return 0
        print(
            f"machine: {os.cpu_count()} CPUs; load generator: "
            + (
                f"wrk, 1 thread, {args.concurrency} connections"
                if have_wrk()
                else f"httpx in-process (wrk not installed), {args.concurrency} workers"
            )
            + f", {args.seconds:.0f} s per measured load, on the same machine",
            flush=True,
        )
        rows: list[Row] = []
        with tempfile.TemporaryDirectory(prefix="cqbench-") as tmp:
            opts = Options(
                args.seconds, args.concurrency, args.users, args.hot_users, args.profile, Path(tmp)
            )
            redis_server = start_own_redis(Path(tmp) / "redis", bench_dir() / "redis.log")
            try:
                for ds in datasets:
                    marker = markers[ds.label]
                    print(
                        f"[{ds.label}] {marker['vehicle_rows']:,} vehicles,"
                        f" {marker['violation_rows']:,} violations in {ds.dbname}"
                    )
                    owners = pick_owners(ds, max(args.users, args.hot_users))
                    for case in cases:
                        cached = case == "cached"
                        chosen = owners[: args.hot_users] if cached else owners[: args.users]
                        rows += run_cluster_case(
                            ds, cached=cached, owners=chosen, redis_url=redis_server.url, opts=opts
                        )
            finally:
                redis_server.close()
        print_table(rows)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
