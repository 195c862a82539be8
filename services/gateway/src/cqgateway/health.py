"""Liveness and readiness probes (API.md "Health").

``/healthz`` does no I/O. ``/readyz`` asks every backing component at once, each with
a short deadline: the four gRPC services through the standard ``grpc.health.v1``
``Health/Check`` (service ""), PostgreSQL (``SELECT 1``), Redis (``PING``) and Kafka
(``cqcommon.kafka.broker_answers``, the one Kafka probe). kafka-python is blocking, so
the Kafka probe runs in a worker thread and its answer is cached for a couple of
seconds: a load balancer polling /readyz must not open a Kafka connection every time.

In sandbox mode (R-SBX-1) one more check, ``sandbox_roster``, says whether a complete load
of the sandbox roster is recorded: the registry owns that fact (the loader records it with
``MarkSandboxRosterLoaded`` after its last step) and answers ``GetSandboxRosterStatus`` from
one indexed read. A sandbox without its logins and cars is not ready. "Loaded" is cached
for a few seconds like the Kafka answer; "not loaded" is not cached, so a gateway turns
ready as soon as the load is recorded (the launcher of ``make run`` waits for exactly that).
Outside sandbox mode the check is absent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from cqcommon.kafka import broker_answers

from cqgateway.backends import SERVICE_NAMES, Backends

if TYPE_CHECKING:
    from cqtraffic.registry.v1.registry_pb2_grpc import RegistryServiceAsyncStub

log = logging.getLogger("cqgateway.health")

GRPC_CHECK_TIMEOUT_S = 1.0
DB_CHECK_TIMEOUT_S = 2.0
REDIS_CHECK_TIMEOUT_S = 1.0
KAFKA_CHECK_TIMEOUT_S = 1.5
KAFKA_CACHE_S = 2.0
ROSTER_CHECK_TIMEOUT_S = 1.0
ROSTER_CACHE_S = 5.0
SANDBOX_ROSTER_CHECK = "sandbox_roster"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""


def kafka_metadata_ok(bootstrap: str, timeout_s: float) -> CheckResult:
    """Blocking: does the broker at ``bootstrap`` answer a metadata request?"""
    reason = broker_answers(bootstrap, timeout_s=timeout_s, client_id="cqgateway-readyz")
    return CheckResult(reason is None, reason or "")


class KafkaProbe:
    """The Kafka check with a short-lived cache; concurrent callers share one probe."""

    def __init__(
        self,
        bootstrap: str,
        *,
        timeout_s: float = KAFKA_CHECK_TIMEOUT_S,
        cache_s: float = KAFKA_CACHE_S,
        probe: Callable[[str, float], CheckResult] = kafka_metadata_ok,
    ) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._probe = probe
        self._cached: tuple[float, CheckResult] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> CheckResult:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            result = await asyncio.to_thread(self._probe, self._bootstrap, self._timeout_s)
            self._cached = (time.monotonic(), result)
            return result


class SandboxRosterProbe:
    """Whether the registry records a complete sandbox roster load; "loaded" is cached."""

    def __init__(
        self,
        registry: RegistryServiceAsyncStub | None,
        *,
        timeout_s: float = ROSTER_CHECK_TIMEOUT_S,
        cache_s: float = ROSTER_CACHE_S,
    ) -> None:
        self._registry = registry
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._loaded_until = 0.0

    async def check(self) -> CheckResult:
        if time.monotonic() < self._loaded_until:
            return CheckResult(True)
        if self._registry is None:
            return CheckResult(False, "no registry client")
        from cqtraffic.registry.v1 import registry_pb2

        try:
            status = await self._registry.GetSandboxRosterStatus(
                registry_pb2.GetSandboxRosterStatusRequest(), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            return CheckResult(False, f"registry {exc.code().name}")
        if not status.loaded:
            return CheckResult(False, "not loaded yet (python -m cqregistry load-sandbox)")
        self._loaded_until = time.monotonic() + self._cache_s
        return CheckResult(True)


async def grpc_serving(
    channel: grpc.aio.Channel, timeout_s: float = GRPC_CHECK_TIMEOUT_S
) -> CheckResult:
    """The standard health check of the whole server (service "")."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        return CheckResult(False, exc.code().name)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        return CheckResult(
            False, health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        )
    return CheckResult(True)


async def _bounded(name: str, check: Awaitable[CheckResult], timeout_s: float) -> CheckResult:
    try:
        async with asyncio.timeout(timeout_s):
            return await check
    except TimeoutError:
        return CheckResult(False, "timeout")
    except Exception as exc:  # a probe must answer "down", never crash /readyz
        log.warning("readiness check %s failed", name, exc_info=True)
        return CheckResult(False, type(exc).__name__)


class ReadinessChecker:
    """Runs every check concurrently; the answer names each component's state."""

    def __init__(self, backends: Backends, *, sandbox_mode: bool = False) -> None:
        self._backends = backends
        self._kafka = KafkaProbe(backends.kafka_bootstrap_servers)
        self._roster = SandboxRosterProbe(backends.registry) if sandbox_mode else None

    async def _db(self) -> CheckResult:
        return CheckResult(await self._backends.db.ping())

    async def _redis(self) -> CheckResult:
        pong = await self._backends.redis.ping()
        return CheckResult(bool(pong))

    async def check(self) -> dict[str, CheckResult]:
        names: list[str] = []
        checks: list[Awaitable[CheckResult]] = []
        for name in SERVICE_NAMES:
            names.append(name)
            # 0.5 s of slack over the RPC deadline so the deadline, not the guard, answers.
            checks.append(
                _bounded(
                    name, grpc_serving(self._backends.channels[name]), GRPC_CHECK_TIMEOUT_S + 0.5
                )
            )
        names += ["postgres", "redis", "kafka"]
        checks += [
            _bounded("postgres", self._db(), DB_CHECK_TIMEOUT_S + 0.5),
            _bounded("redis", self._redis(), REDIS_CHECK_TIMEOUT_S),
            _bounded("kafka", self._kafka.check(), KAFKA_CHECK_TIMEOUT_S + 1.0),
        ]
        if self._roster is not None:
            names.append(SANDBOX_ROSTER_CHECK)
            checks.append(
                _bounded(SANDBOX_ROSTER_CHECK, self._roster.check(), ROSTER_CHECK_TIMEOUT_S + 0.5)
            )
        results = await asyncio.gather(*checks)
        return dict(zip(names, results, strict=True))
