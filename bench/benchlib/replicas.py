"""Extra gateway and query replicas beside a cluster ``python -m cqdev run`` started.

The launcher runs one process of each part; scaling out is starting more of the stateless
ones next to it with the same settings:

- a query replica is ``python -m cqquery serve`` (the gRPC server only: the launcher's
  query process keeps the relay and the read-model consumer) on another ``GRPC_PORT``;
- a gateway replica is ``python -m cqgateway serve`` on another ``GATEWAY_PORT`` whose
  ``QUERY_SERVICE_ADDR`` lists every query replica (``ipv4:127.0.0.1:p1,127.0.0.1:p2``:
  :func:`cqcommon.grpc_client.make_channel` spreads the calls round-robin).

Each gets the launcher's environment (stack, peer addresses, the fake Alipay's settings),
logs to ``.local/bench/<name>.log`` and is stopped by :meth:`Replicas.stop` (SIGTERM, then
SIGKILL; a parent-death signal covers a crash of this process).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import grpc
import httpx
from cqdev.cluster import ALIPAY_NOTIFY_PATH, FakeAlipaySpec, sandbox_keys_dir, sandbox_mode
from cqdev.stack import ManagedProcess, free_port, start_process
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.benchlib import ROOT, Cluster


def _grpc_serving(addr: str) -> bool:
    try:
        with grpc.insecure_channel(addr) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class Replicas:
    """Query and gateway replicas started next to ``cluster``; a context manager."""

    def __init__(self, cluster: Cluster, log_dir: Path, *, ready_timeout_s: float = 120.0) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.ready_timeout_s = ready_timeout_s
        self.procs: dict[str, ManagedProcess] = {}
        self.query_addrs = [str(cluster.env["QUERY_SERVICE_ADDR"])]
        self.gateway_urls: list[str] = []

    def _env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(self.cluster.env)
        env.update({str(k): str(v) for k, v in dict(self.cluster.info["stack_env"]).items()})
        if sandbox_mode(env):
            # what the launcher gives every child in sandbox mode: the fake Alipay's settings
            fake_url = str(self.cluster.info["fake_alipay_url"])
            fake = FakeAlipaySpec(
                port=int(fake_url.rsplit(":", 1)[1]),
                keys_dir=sandbox_keys_dir(),
                notify_url=self.cluster.gateway_url + ALIPAY_NOTIFY_PATH,
            )
            env.update(fake.env())
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        proc = start_process(name, argv, log_path=self.log_dir / f"{name}.log", env=env, cwd=ROOT)
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, ready: object) -> None:
        proc = self.procs[name]
        deadline = time.perf_counter() + self.ready_timeout_s
        while not (ready() if callable(ready) else False):
            if not proc.alive():
                raise RuntimeError(f"{name} exited before it was ready:\n{proc.log_tail(30)}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} not ready after {self.ready_timeout_s:.0f} s")
            time.sleep(0.2)

    def add_query(self) -> str:
        """One more query replica (gRPC only); its address."""
        port = free_port()
        name = f"query#{len(self.query_addrs) + 1}"
        self._start(
            name, [sys.executable, "-m", "cqquery", "serve"], self._env({"GRPC_PORT": str(port)})
        )
        addr = f"127.0.0.1:{port}"
        self._wait(name, lambda: _grpc_serving(addr))
        self.query_addrs.append(addr)
        return addr

    def query_target(self) -> str:
        """Every query replica in one gRPC target (round-robin over them)."""
        if len(self.query_addrs) == 1:
            return self.query_addrs[0]
        return "ipv4:" + ",".join(self.query_addrs)

    def add_gateway(self) -> str:
        """One more gateway, pointed at every query replica started so far; its URL."""
        port = free_port()
        name = f"gateway#{len(self.gateway_urls) + 2}"
        env = self._env({"GATEWAY_PORT": str(port), "QUERY_SERVICE_ADDR": self.query_target()})
        self._start(name, [sys.executable, "-m", "cqgateway", "serve"], env)
        url = f"http://127.0.0.1:{port}"
        self._wait(name, lambda: _http_ok(url + "/readyz"))
        self.gateway_urls.append(url)
        return url

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.alive()}

    def stop(self) -> None:
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            proc.send_stop()
        for proc in procs.values():
            proc.stop(15)

    def __enter__(self) -> Replicas:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
