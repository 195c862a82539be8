"""The cluster launcher behind `make run`: stack, migrations, sandbox roster, every service.

:func:`run` provisions the local stack (:mod:`cqdev.stack`), then at once starts one
``python -m cq<svc> run`` per service, the job runner (``python -m cqjobs run``: its run
records and the nightly scheduler) and ``python -m cqgateway serve``, and meanwhile applies
every schema's migrations (registry, adjudication, payment, follow, query, jobs, gateway)
from this process, all schemas concurrently on one connection each (the services migrate
their own schema again as they start, under the same advisory lock, and find nothing left
to do). It polls every child's readiness every 50 ms (gRPC health SERVING; the gateway's
``/readyz`` 200), loads the sandbox roster (``python -m cqregistry load-sandbox``) as soon as
every service is ready, and calls the cluster ready when the loader has exited 0 and the
gateway's ``/readyz`` answers 200 — which, in sandbox mode, includes the check that the
roster is loaded. It prints the URLs, the sandbox logins and one line per start phase
(where the seconds went), then supervises: a child that dies is reported and everything is
stopped (exit 1); Ctrl-C / SIGTERM stops the children (SIGTERM, then SIGKILL after a grace
period), then the stack, and exits 0.

Why this shape (the profile is in bench/README.md, "Start time"): on a 2-core machine the
start is CPU-bound — seven interpreters importing grpc, psycopg, pydantic, kafka and
OpenTelemetry — so everything that can overlap does, and nothing starts an interpreter
that is not needed (the migrations used to be seven more processes, one after another).

In sandbox mode (``SANDBOX_MODE``, default true; R-SBX-1) the fake Alipay gateway
(``python -m cqdev fake-alipay``, port ``FAKE_ALIPAY_PORT``, default 8010) starts first,
with the sandbox keys of ``.local/alipay``, and every child gets the settings that point
at it (``ALIPAY_GATEWAY_URL``, the two PEM keys, ``ALIPAY_APP_ID``, ``ALIPAY_SELLER_ID``)
and ``ALIPAY_NOTIFY_URL=<gateway>/api/v1/alipay/notify``, whatever the environment says:
the sandbox cannot reach a real provider. Outside sandbox mode nothing of this happens and
the real Alipay settings come from the environment.

Children run in their own sessions (so the terminal's Ctrl-C reaches only us and we stop
them in order) with a parent-death signal (so even ``kill -9`` of the launcher leaves no
orphan). Their output goes to ``.local/logs/<name>.log``; stdout keeps only the summary
and errors.

Public API: :class:`ChildSpec`, :class:`GrpcReady`, :class:`HttpReady`,
:class:`ClusterConfig`, :class:`FakeAlipaySpec`, :func:`default_config`, :func:`run`,
:func:`sandbox_mode`, :func:`sandbox_keys_dir`, :class:`ServiceSpec`,
:data:`SERVICES`, :data:`JOBS`, :data:`LAUNCHED`, :data:`MIGRATION_ORDER`, :func:`setup_commands`, :func:`run_setup`,
:class:`Interrupted`, :class:`PhaseLog`, :func:`migration_targets`. ``--ready-file`` (see
:class:`ClusterConfig`) writes a JSON file with URLs, pids and the phases once ready, for
end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO
from urllib.parse import urlsplit

from cqdev.stack import (
    PORT_WAIT_S,
    ManagedProcess,
    Stack,
    StackError,
    ensure_port_free,
    free_port,
    local_dir,
    project_root,
    start_process,
)

# --------------------------------------------------------------------------------------
# what the cluster consists of
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """A gRPC service: its short name, Python module, address env var and default port."""

    name: str
    module: str
    addr_env: str
    default_port: int


#: Start order (and migration order before the gateway): registry feeds the others.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("registry", "cqregistry", "REGISTRY_SERVICE_ADDR", 50055),
    ServiceSpec("adjudication", "cqadjudication", "ADJUDICATION_SERVICE_ADDR", 50052),
    ServiceSpec("payment", "cqpayment", "PAYMENT_SERVICE_ADDR", 50053),
    ServiceSpec("follow", "cqfollow", "FOLLOW_SERVICE_ADDR", 50054),
    ServiceSpec("query", "cqquery", "QUERY_SERVICE_ADDR", 50051),
)
#: The nightly job runner (R-JOB-*): started last, after the services whose ``RunJob`` it
#: calls; its ``run`` serves the run records (JobsService) and waits for 22:00. Kept out of
#: SERVICES because it is not deployed as they are (a Kubernetes CronJob is planned).
JOBS = ServiceSpec("jobs", "cqjobs", "JOBS_SERVICE_ADDR", 50056)
#: What ``make run`` starts, in order: the services, then the job runner.
LAUNCHED: tuple[ServiceSpec, ...] = (*SERVICES, JOBS)
#: (name, module) in the order their migrations run; the gateway owns an audit schema.
MIGRATION_ORDER: tuple[tuple[str, str], ...] = (
    *((s.name, s.module) for s in LAUNCHED),
    ("gateway", "cqgateway"),
)

SANDBOX_USERS: tuple[tuple[str, str], ...] = (
    ("2088000000000001", "张伟 — happy path: own car 渝A12345, C1 3 points"),
    ("2088000000000002", "李娜 — points boundary: C1 9 points, 渝AD12345"),
    ("2088000000000003", "王强 — A2 licence, 渝B23456"),
    ("2088000000000004", "刘洋 — the follower, no vehicle"),
    ("2088000000000005", "赵敏 — owner approving follows, 渝A67890, overdue decision"),
)


#: The fake Alipay's port in sandbox mode, unless FAKE_ALIPAY_PORT says otherwise.
FAKE_ALIPAY_DEFAULT_PORT = 8010
#: Where Alipay posts trade notifications on the gateway (API.md).
ALIPAY_NOTIFY_PATH = "/api/v1/alipay/notify"
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def sandbox_mode(environ: Mapping[str, str]) -> bool:
    """``SANDBOX_MODE`` as the services read it (pydantic's bool words); default true."""
    return (environ.get("SANDBOX_MODE") or "true").strip().lower() not in _FALSE


def sandbox_keys_dir() -> Path:
    """Where the sandbox's app and fake-Alipay keypairs live (``.local/alipay``)."""
    return local_dir() / "alipay"


@dataclass(frozen=True)
class GrpcReady:
    """Ready when grpc.health.v1 Check(service="") at ``address`` answers SERVING."""

    address: str


@dataclass(frozen=True)
class HttpReady:
    """Ready when GET ``url`` answers 200."""

    url: str


@dataclass(frozen=True)
class ChildSpec:
    """A long-running child: name (log file name), command, readiness probe, extra env."""

    name: str
    argv: tuple[str, ...]
    ready: GrpcReady | HttpReady
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeAlipaySpec:
    """The fake Alipay gateway of sandbox mode: where it listens, its keys, our notify URL."""

    port: int
    keys_dir: Path
    notify_url: str
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8010``."""
        return f"http://{self.host}:{self.port}"

    def child(self) -> ChildSpec:
        """``python -m cqdev fake-alipay``, ready when its health route answers."""
        argv = (
            sys.executable,
            "-m",
            "cqdev",
            "fake-alipay",
            "--port",
            str(self.port),
            "--host",
            self.host,
            "--keys-dir",
            str(self.keys_dir),
        )
        return ChildSpec("fake-alipay", argv, HttpReady(self.url + "/_fake/health"))

    def env(self) -> dict[str, str]:
        """The ALIPAY_* settings every child gets (the keys are made once, 0600)."""
        from cqdev.fake_alipay import ensure_sandbox_keys, sandbox_env

        keys = ensure_sandbox_keys(self.keys_dir)
        return sandbox_env(self.url + "/gateway.do", keys, notify_url=self.notify_url)


@dataclass
class ClusterConfig:
    """Everything :func:`run` needs; :func:`default_config` builds the real one.

    ``setup`` commands run in order before any child starts and must exit 0.
    ``migrations`` (schema, folder) are applied by the launcher itself while the children
    start (:func:`apply_all_migrations`); the loaders of ``after_ready`` start once every
    service is ready and once the migrations are done.
    ``ports`` are (port, env var) pairs checked free before anything starts (a busy one
    is waited for up to ``port_wait_s``: ``cqdev.stack.PORT_WAIT_S``).
    ``ready_file``: once ready, a JSON file with gateway_url, docs_url, launcher_pid,
    pids (name -> pid), stack env, fake_alipay_url and seconds to ready is written there
    (atomically). ``fake_alipay``: started before the services, its settings given to
    every child (sandbox mode); None outside sandbox mode.
    """

    setup: list[tuple[str, tuple[str, ...]]]
    services: list[ChildSpec]
    gateway: ChildSpec
    gateway_url: str
    ports: list[tuple[int, str]] = field(default_factory=list)
    port_wait_s: float = PORT_WAIT_S
    log_dir: Path = field(default_factory=lambda: local_dir() / "logs")
    ready_timeout_s: float = 180.0
    setup_timeout_s: float = 1800.0
    stop_grace_s: float = 10.0
    ready_file: Path | None = None
    # started once every service is ready (the sandbox loader goes through their gRPC
    # APIs); the cluster is ready once each has exited 0 and the gateway's probe passes
    after_ready: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    migrations: list[tuple[str, Path]] = field(default_factory=list)
    #: how often the launcher polls readiness (a probe in flight is never doubled)
    poll_interval_s: float = 0.05
    stack_factory: Callable[[], Stack] = Stack
    print_logins: bool = True
    staff_password: str = "sandbox"  # noqa: S105 - the documented sandbox password
    out: TextIO = field(default_factory=lambda: sys.stdout)
    fake_alipay: FakeAlipaySpec | None = None


def _addr(environ: Mapping[str, str], spec: ServiceSpec) -> str:
    return environ.get(spec.addr_env) or f"127.0.0.1:{spec.default_port}"


def _port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def setup_commands(*, load_sandbox: bool = True) -> list[tuple[str, tuple[str, ...]]]:
    """Migrations for every service in order, then the sandbox roster."""
    py = sys.executable
    cmds: list[tuple[str, tuple[str, ...]]] = [
        (f"migrate-{name}", (py, "-m", module, "migrate")) for name, module in MIGRATION_ORDER
    ]
    if load_sandbox:
        cmds.append(("load-sandbox", (py, "-m", "cqregistry", "load-sandbox")))
    return cmds


def migration_targets() -> list[tuple[str, Path]]:
    """(schema, migrations folder) of every service and the gateway, in MIGRATION_ORDER.

    Found without importing the packages (``find_spec``): the launcher needs the folders,
    not the services' code. Layout as ``cqdev.pytest_plugin.migration_targets``: the
    folder ``migrations/`` beside ``src/``, schema name = service name.
    """
    targets: list[tuple[str, Path]] = []
    for schema, module in MIGRATION_ORDER:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ClusterError(f"cannot find package {module} (run `make install`)")
        targets.append((schema, Path(spec.origin).resolve().parents[2] / "migrations"))
    return targets


def apply_all_migrations(database_url: str, targets: Sequence[tuple[str, Path]]) -> list[str]:
    """Apply every schema's pending migrations, all schemas at once; what was applied.

    Schemas are independent (no migration refers to another schema), and each is guarded
    by its own advisory lock, so running them concurrently is as safe as one by one."""
    from cqcommon.migrations import apply_migrations

    async def all_schemas() -> list[str]:
        done = await asyncio.gather(
            *(apply_migrations(database_url, schema, folder) for schema, folder in targets)
        )
        return [name for applied in done for name in applied]

    return asyncio.run(all_schemas())


def default_config(
    environ: Mapping[str, str] | None = None, *, ready_file: Path | None = None
) -> ClusterConfig:
    """The real cluster: the five services' and the job runner's ``run``, the gateway's ``serve``."""
    env = dict(os.environ if environ is None else environ)
    py = sys.executable
    # each process serves its Prometheus metrics on a port of its own (METRICS_PORT), as
    # in a deployment; on one machine they cannot share one
    services = [
        ChildSpec(
            s.name,
            (py, "-m", s.module, "run"),
            GrpcReady(_addr(env, s)),
            env={"METRICS_PORT": str(free_port())},
        )
        for s in LAUNCHED
    ]
    host = env.get("GATEWAY_HOST") or "127.0.0.1"
    gw_port = int(env.get("GATEWAY_PORT") or 8000)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    gateway_url = f"http://{url_host}:{gw_port}"
    ports = [(_port_of(_addr(env, s)), s.addr_env) for s in LAUNCHED]
    ports.append((gw_port, "GATEWAY_PORT"))
    fake_alipay: FakeAlipaySpec | None = None
    if sandbox_mode(env):
        fake_port = int(env.get("FAKE_ALIPAY_PORT") or FAKE_ALIPAY_DEFAULT_PORT)
        fake_alipay = FakeAlipaySpec(
            port=fake_port,
            keys_dir=sandbox_keys_dir(),
            notify_url=gateway_url + ALIPAY_NOTIFY_PATH,
        )
        ports.append((fake_port, "FAKE_ALIPAY_PORT"))
    log_dir = Path(env["CQDEV_LOG_DIR"]) if env.get("CQDEV_LOG_DIR") else local_dir() / "logs"
    return ClusterConfig(
        log_dir=log_dir,
        setup=[],
        migrations=migration_targets(),
        after_ready=[("load-sandbox", (py, "-m", "cqregistry", "load-sandbox"))],
        services=services,
        gateway=ChildSpec(
            "gateway", (py, "-m", "cqgateway", "serve"), HttpReady(gateway_url + "/readyz")
        ),
        gateway_url=gateway_url,
        ports=ports,
        ready_file=ready_file,
        staff_password=env.get("SANDBOX_STAFF_PASSWORD") or "sandbox",
        fake_alipay=fake_alipay,
    )


# --------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------


class Interrupted(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM so every ``finally`` cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While active, SIGINT/SIGTERM raise :class:`Interrupted` (once; later ones are noted)."""
    fired: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            return  # already shutting down: let the cleanup finish
        fired.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Shield a cleanup from a second Ctrl-C (children have parent-death signals anyway)."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------------------
# readiness probes
# --------------------------------------------------------------------------------------


def _grpc_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _endpoint(probe: GrpcReady | HttpReady) -> tuple[str, int]:
    if isinstance(probe, GrpcReady):
        host, port = probe.address.rsplit(":", 1)
        return host, int(port)
    parts = urlsplit(probe.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _is_ready(probe: GrpcReady | HttpReady) -> bool | None:
    """True when ready; None while nothing listens yet (a connect, nearly free: what most
    polls find while a child imports); False when it listens but is not ready yet."""
    host, port = _endpoint(probe)
    try:
        with socket.create_connection((host, port), timeout=0.2):
            pass
    except OSError:
        return None
    if isinstance(probe, GrpcReady):
        return _grpc_serving(probe.address)
    return _http_ok(probe.url)


#: How long after a full readiness probe said "not ready" the next one is sent.
FULL_PROBE_INTERVAL_S = 0.25


class ClusterError(RuntimeError):
    """Startup or supervision failed; the message is meant for the user."""


# --------------------------------------------------------------------------------------
# the launcher
# --------------------------------------------------------------------------------------


def run_setup(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, timeout_s: float = 1800.0
) -> None:
    """Run one setup command to completion (killed with us); raise if it fails."""
    proc = start_process(name, argv, log_path=log_dir / f"{name}.log", env=env, cwd=project_root())
    try:
        deadline = time.monotonic() + timeout_s
        while proc.alive():
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{name} did not finish within {timeout_s:.0f}s; log {proc.log_path}"
                )
            time.sleep(0.05)
        code = proc.returncode()
        if code != 0:
            raise ClusterError(
                f"`{' '.join(argv[1:])}` failed with exit code {code}; "
                f"log {proc.log_path}:\n{proc.log_tail()}"
            )
    finally:
        proc.stop(5)


class PhaseLog:
    """Where the start's seconds went: named phases on one clock (thread-safe).

    The clock starts when the launcher's process started, so the first phase is the
    interpreter and its imports; phases overlap where work ran at once. ``make``'s own
    checks come before the process and are not on this clock.
    """

    def __init__(self, t0: float) -> None:
        self.t0 = t0  # time.monotonic() at the process's start
        self._phases: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    @classmethod
    def since_process_start(cls) -> PhaseLog:
        return cls(time.monotonic() - _process_age_s())

    def now(self) -> float:
        """Seconds on this clock."""
        return time.monotonic() - self.t0

    def add(self, name: str, began: float, ended: float | None = None) -> None:
        """Record a phase from ``began`` to ``ended`` (default now), seconds on this clock."""
        with self._lock:
            self._phases.append((name, began, self.now() if ended is None else ended))

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        began = self.now()
        yield
        self.add(name, began)

    def as_dict(self) -> list[dict[str, float | str]]:
        with self._lock:
            ordered = sorted(self._phases, key=lambda p: (p[2], p[1]))
        return [
            {"phase": n, "began_s": round(b, 3), "ended_s": round(e, 3), "took_s": round(e - b, 3)}
            for n, b, e in ordered
        ]

    def lines(self) -> list[str]:
        """One line per phase, in the order they ended."""
        rows = self.as_dict()
        width = max((len(str(r["phase"])) for r in rows), default=10)
        return [
            f"  {r['phase']!s:<{width}}  {r['began_s']:6.2f} → {r['ended_s']:6.2f}"
            f"  {r['took_s']:6.2f} s"
            for r in rows
        ]


def _process_age_s() -> float:
    """Seconds since this process started. On Linux from /proc, both figures counted from
    boot in clock ticks (psutil's create_time adds the boot time, known to a whole second
    only); elsewhere psutil's."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # field 22 (starttime), counted after the command name's closing parenthesis
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime_s = float(f.read().split()[0])
        return max(0.0, uptime_s - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())


@dataclass
class _Loader:
    """A running ``after_ready`` command."""

    process: ManagedProcess
    argv: tuple[str, ...]
    began: float


def _ready_phase(spec: ChildSpec) -> str:
    if isinstance(spec.ready, GrpcReady):
        return f"{spec.name}: start → gRPC SERVING"
    path = spec.ready.url.split("/", 3)[-1] if spec.ready.url.count("/") >= 3 else ""
    return f"{spec.name}: start → /{path} 200"


class _Cluster:
    """Running children and the stack; stops everything it started."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.stack: Stack | None = None
        self.children: dict[str, ManagedProcess] = {}
        # settings pointing every child at the fake Alipay (sandbox mode), else empty
        self.provider_env: dict[str, str] = {}
        self.phases = PhaseLog.since_process_start()
        self.t0 = self.phases.t0
        #: when each child was started (seconds on the phase clock)
        self.spawned: dict[str, float] = {}
        #: loaders still running
        self.loaders: dict[str, _Loader] = {}
        # probes and the migrations run here, so the main thread only polls and decides
        self.pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="cqdev-start")

    def say(self, message: str) -> None:
        print(message, file=self.config.out, flush=True)

    def child_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        assert self.stack is not None
        env = dict(os.environ)
        env.update(self.stack.env())
        env["PYTHONUNBUFFERED"] = "1"  # logs appear as they happen
        env.update(self.provider_env)
        env.update(extra)
        return env

    def start_child(self, spec: ChildSpec) -> None:
        self.spawned[spec.name] = self.phases.now()
        self.children[spec.name] = start_process(
            spec.name,
            spec.argv,
            log_path=self.config.log_dir / f"{spec.name}.log",
            env=self.child_env(spec.env),
            cwd=project_root(),
        )

    def start(self) -> None:
        cfg = self.config
        phases = self.phases
        phases.add("launcher (interpreter, imports)", 0.0, phases.now())
        for port, var in cfg.ports:
            ensure_port_free(port, var, wait_s=cfg.port_wait_s)
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        # the fake's settings (its keys, made once) come from its module, whose import costs
        # more than the stack: both at once
        provider_env = self.pool.submit(cfg.fake_alipay.env) if cfg.fake_alipay else None
        self.say("cqdev: provisioning PostgreSQL, Redis, Kafka ...")
        with phases.timed("stack (PostgreSQL, Redis, Kafka)"):
            self.stack = cfg.stack_factory().start()
        for line in self.stack.summary():
            self.say(f"cqdev:   {line}")
        waiting: list[ChildSpec] = []
        if cfg.fake_alipay is not None and provider_env is not None:
            fake = cfg.fake_alipay.child()
            # Started first; the services get its settings from the start, so none of them
            # ever sees a real gateway URL.
            self.say(f"cqdev: fake Alipay on {cfg.fake_alipay.url} (sandbox mode) ...")
            self.provider_env = provider_env.result()
            self.start_child(fake)
            waiting.append(fake)
        for name, argv in cfg.setup:
            self.say(f"cqdev: {name} ...")
            with phases.timed(name):
                run_setup(name, argv, self.child_env({}), cfg.log_dir, cfg.setup_timeout_s)
        for spec in (*cfg.services, cfg.gateway):
            self.start_child(spec)
            waiting.append(spec)
        self.say(f"cqdev: started {', '.join(self.children)}; waiting for readiness ...")
        migrations = self.start_migrations()
        self.wait_until_ready(waiting, migrations)

    def start_migrations(self) -> Future[list[str]] | None:
        """Apply every schema's migrations in a worker thread while the children import."""
        cfg = self.config
        if not cfg.migrations:
            return None
        assert self.stack is not None
        self.say(f"cqdev: migrations of {len(cfg.migrations)} schemas ...")
        database_url = self.stack.database_url
        began = self.phases.now()

        def migrate() -> list[str]:
            try:
                return apply_all_migrations(database_url, cfg.migrations)
            finally:
                self.phases.add(f"migrations ({len(cfg.migrations)} schemas)", began)

        return self.pool.submit(migrate)

    def wait_until_ready(
        self, waiting: list[ChildSpec], migrations: Future[list[str]] | None
    ) -> None:
        """Poll every probe at once (one in flight per child), start the loaders when every
        service is ready, and return once everything is ready and every loader is done."""
        cfg = self.config
        deadline = self.t0 + cfg.ready_timeout_s
        services = {spec.name for spec in cfg.services}
        pending = {spec.name: spec for spec in waiting}
        probes: dict[str, Future[bool | None]] = {}
        next_probe: dict[str, float] = {}
        loaders_started = not cfg.after_ready
        while True:
            self.check_children()
            if migrations is not None and migrations.done():
                applied = migrations.result()  # raises what the migration raised
                if applied:
                    self.say(f"cqdev: applied {len(applied)} migrations")
                migrations = None
            services_ready = not services & pending.keys()
            for name, spec in list(pending.items()):
                probe = probes.get(name)
                if probe is None:
                    # the gateway's /readyz asks every service: not before they are ready
                    early = spec is cfg.gateway and not services_ready
                    if not early and time.monotonic() >= next_probe.get(name, 0.0):
                        probes[name] = self.pool.submit(_is_ready, spec.ready)
                elif probe.done():
                    del probes[name]
                    answer = probe.result()
                    if answer:
                        del pending[name]
                        self.phases.add(_ready_phase(spec), self.spawned[name])
                    elif answer is False:
                        # it listens but is not ready: a full probe costs the child CPU it
                        # needs for starting, so ask less often than a bare connect
                        next_probe[name] = time.monotonic() + FULL_PROBE_INTERVAL_S
            if not loaders_started and migrations is None and services_ready:
                self.start_loaders()
                loaders_started = True
            self.check_loaders()
            if not pending and loaders_started and not self.loaders:
                return
            if time.monotonic() > deadline:
                self.not_ready_error(pending)
            time.sleep(cfg.poll_interval_s)

    def start_loaders(self) -> None:
        for name, argv in self.config.after_ready:
            self.say(f"cqdev: {name} ...")
            proc = start_process(
                name,
                argv,
                log_path=self.config.log_dir / f"{name}.log",
                env=self.child_env({}),
                cwd=project_root(),
            )
            self.loaders[name] = _Loader(proc, tuple(argv), self.phases.now())

    def check_loaders(self) -> None:
        """A loader that exited 0 is done (its phase recorded); any other exit fails."""
        for name, loader in list(self.loaders.items()):
            proc = loader.process
            code = proc.returncode()
            if code is None:
                continue
            del self.loaders[name]
            proc.stop(1)
            if code != 0:
                raise ClusterError(
                    f"`{' '.join(loader.argv[1:])}` failed with exit code {code}; "
                    f"log {proc.log_path}:\n{proc.log_tail()}"
                )
            self.phases.add(name, loader.began)

    def not_ready_error(self, pending: Mapping[str, ChildSpec]) -> None:
        cfg = self.config
        if pending:  # every child still waited for, each with its log's tail
            raise ClusterError(
                "\n".join(
                    f"{spec.name} not ready after {cfg.ready_timeout_s:.0f}s ({spec.ready}); "
                    f"log {self.children[name].log_path}:\n{self.children[name].log_tail()}"
                    for name, spec in pending.items()
                )
            )
        name, loader = next(iter(self.loaders.items()))
        raise ClusterError(
            f"{name} not done after {cfg.ready_timeout_s:.0f}s; "
            f"log {loader.process.log_path}:\n{loader.process.log_tail()}"
        )

    def check_children(self) -> None:
        for name, proc in self.children.items():
            code = proc.returncode()
            if code is not None:
                raise ClusterError(
                    f"{name} (pid {proc.pid}) exited unexpectedly with code "
                    f"{code}; log {proc.log_path}:\n{proc.log_tail()}"
                )

    def announce(self) -> None:
        cfg = self.config
        elapsed = time.monotonic() - self.t0
        gw = cfg.gateway_url
        lines = [
            "",
            f"cqdev: cluster ready in {elapsed:.1f}s",
            f"  gateway   {gw}",
            f"  API docs  {gw}/docs",
            f"  readiness {gw}/readyz",
        ]
        for spec in cfg.services:
            if isinstance(spec.ready, GrpcReady):
                metrics = spec.env.get("METRICS_PORT")
                extra = f"  metrics http://127.0.0.1:{metrics}/metrics" if metrics else ""
                lines.append(f"  {spec.name:<13} grpc://{spec.ready.address}{extra}")
        lines.append(f"  metrics       {gw}/metrics (the gateway's)")
        if cfg.fake_alipay is not None:
            fake = cfg.fake_alipay
            lines += [
                f"  fake Alipay   {fake.url} (sandbox: no real provider is reached)",
                "",
                "Sandbox payment: create it (POST /api/v1/payments), then pay its trade_no as",
                "the mini-program would; the fake posts the signed notification to",
                f"{fake.notify_url} (retried until it answers success):",
                f"  curl -X POST {fake.url}/sandbox/alipay/trades/<trade_no>/pay",
            ]
        lines += [
            "",
            "Nightly jobs (R-JOB-*): the job runner waits for 22:00 Asia/Shanghai; now:",
            "  make jobs FORCE=1   (python -m cqjobs jobs run --force [--job NAME] [--now TIME]);",
            f"  the runs: GET {gw}/internal/v1/jobs (staff)",
        ]
        if cfg.print_logins:
            lines += [
                "",
                "Sandbox logins (POST /api/v1/auth/alipay "
                '{"auth_code": "sandbox:<alipay_user_id>"}):',
            ]
            lines += [f"  sandbox:{uid}  {who}" for uid, who in SANDBOX_USERS]
            lines += [
                f"Staff (POST /internal/v1/auth/login): clerk01 (clerk), super01 "
                f"(supervisor), password {cfg.staff_password!r} (SANDBOX_STAFF_PASSWORD)"
            ]
        lines += ["", f"Logs: {cfg.log_dir}/<name>.log. Ctrl-C stops everything.", ""]
        lines += [
            "cqdev: where the start went (seconds since the launcher's process started;"
            " phases overlap where work ran at once):",
            *self.phases.lines(),
            f"  total: ready in {elapsed:.2f} s",
            "",
        ]
        self.say("\n".join(lines))
        if cfg.ready_file is not None:
            self.write_ready_file(elapsed)

    def metrics_urls(self) -> dict[str, str]:
        """Each process's Prometheus endpoint by name (the gateway's on its own port)."""
        urls = {
            spec.name: f"http://127.0.0.1:{spec.env['METRICS_PORT']}/metrics"
            for spec in self.config.services
            if isinstance(spec.ready, GrpcReady) and spec.env.get("METRICS_PORT")
        }
        urls["gateway"] = self.config.gateway_url + "/metrics"
        return urls

    def write_ready_file(self, elapsed: float) -> None:
        assert self.config.ready_file is not None and self.stack is not None
        payload = {
            "gateway_url": self.config.gateway_url,
            "docs_url": self.config.gateway_url + "/docs",
            "launcher_pid": os.getpid(),
            "pids": {name: p.pid for name, p in self.children.items()},
            "stack_pids": {p.name: p.pid for p in self.stack.processes()},
            "stack_env": self.stack.env(),
            "fake_alipay_url": self.config.fake_alipay.url if self.config.fake_alipay else None,
            "metrics_urls": self.metrics_urls(),
            "seconds_to_ready": round(elapsed, 3),
            "phases": self.phases.as_dict(),
        }
        path = self.config.ready_file
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False), "utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file

    def supervise(self) -> None:
        while True:
            self.check_children()
            time.sleep(0.2)

    def stop(self) -> None:
        grace = self.config.stop_grace_s
        self.pool.shutdown(wait=False, cancel_futures=True)
        for loader in self.loaders.values():  # interrupted mid-load: it must not outlive us
            loader.process.stop(grace)
        self.loaders.clear()
        if self.children:
            self.say("cqdev: stopping services ...")
            # Ask all at once, then wait: shutdown takes one grace period, not one each.
            for proc in self.children.values():
                proc.send_stop()
            deadline = time.monotonic() + grace
            for proc in self.children.values():
                proc.stop(max(0.1, deadline - time.monotonic()))
            self.children.clear()
        if self.stack is not None:
            self.say("cqdev: stopping the stack ...")
            self.stack.close()
            self.stack = None


def run(config: ClusterConfig | None = None) -> int:
    """Start the cluster and supervise it until a signal or a child's death; exit code."""
    config = config or default_config()
    cluster = _Cluster(config)
    code = 0
    with _signals_raise():
        try:
            cluster.start()
            cluster.announce()
            cluster.supervise()
        except Interrupted as sig:
            cluster.say(f"cqdev: {sig} received")
            code = 0
        except (ClusterError, StackError) as exc:
            cluster.say(f"cqdev: ERROR: {exc}")
            code = 1
        finally:
            with _signals_ignored():
                cluster.stop()
                if config.ready_file is not None:
                    with contextlib.suppress(OSError):
                        config.ready_file.unlink()
    cluster.say("cqdev: stopped" + ("" if code == 0 else " (after an error)"))
    return code
