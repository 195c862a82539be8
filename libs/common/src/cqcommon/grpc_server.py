"""gRPC server bootstrap shared by every service: grpc.aio server with the standard health
service (NOT_SERVING while a dependency is unreachable and during shutdown), reflection,
OpenTelemetry server spans, and the one interceptor that maps domain errors to status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cqcommon.asyncutil import sleep_or_stop
from cqcommon.errors import INTERNAL_ERROR, SERVICE_UNAVAILABLE, DomainError
from cqcommon.grpc_errors import ERROR_METADATA_KEY, status_for
from cqcommon.metrics import MetricsInterceptor
from cqcommon.telemetry import tracing_active

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Turns ``DomainError`` into its gRPC status plus the error in trailing metadata;
    a lost or refused database connection (``psycopg.OperationalError``, e.g. while
    PostgreSQL restarts) becomes UNAVAILABLE, which the caller may retry; any other
    exception becomes INTERNAL with no internals leaked to the caller."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method

        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await inner(request, context)
            except DomainError as exc:
                await _abort(context, exc)
            except asyncio.CancelledError:
                raise
            except psycopg.OperationalError:
                log.warning("database unavailable in %s", method, exc_info=True)
                await _abort(context, DomainError(SERVICE_UNAVAILABLE))
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                log.exception("unhandled error in %s", method)
                await _abort(context, DomainError(INTERNAL_ERROR))

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: DomainError) -> None:
    context.set_trailing_metadata(((ERROR_METADATA_KEY, error.to_bytes()),))
    await context.abort(status_for(error), error.message_en)


class GrpcServer:
    """A service's gRPC server; ``start()``/``stop()`` from the service runtime."""

    def __init__(
        self,
        *,
        bind: str,
        register: Callable[[grpc.aio.Server], Sequence[str]],
        readiness: Mapping[str, ReadinessCheck],
        check_interval_s: float = 2.0,
        metrics_service: str | None = None,
    ) -> None:
        interceptors: list[Any] = []
        if tracing_active():
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            interceptors.append(aio_server_interceptor())  # type: ignore[no-untyped-call]
        interceptors.append(DomainErrorInterceptor())
        if metrics_service is not None:
            # inside the error interceptor: it sees the DomainError, not the abort
            interceptors.append(MetricsInterceptor(metrics_service))
        # grpc binds with SO_REUSEPORT by default: a second server on a taken port then
        # starts "fine" and the kernel splits the connections between the two (a stale
        # process, or a port handed out twice, answers part of the calls). Off, such a
        # start fails at the bind below.
        self.server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(register(self.server))
        reflection.enable_server_reflection(
            [
                *self.service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        try:
            self.port = self.server.add_insecure_port(bind)
        except RuntimeError as exc:  # grpcio raises where older releases returned 0
            raise OSError(f"cannot bind gRPC server to {bind}: {exc}") from exc
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {bind}")
        self.readiness = dict(readiness)
        self.check_interval_s = check_interval_s
        self._stop = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self.serving = False

    async def start(self) -> None:
        await self.server.start()
        await self._update_health()
        self._watch = asyncio.create_task(self._watch_dependencies(), name="grpc-health-watch")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Report NOT_SERVING first (load balancers drain), then finish in-flight calls."""
        self._stop.set()
        await self.health.enter_graceful_shutdown()
        if self._watch is not None:
            await self._watch
        await self.server.stop(grace_s)

    async def _watch_dependencies(self) -> None:
        while not self._stop.is_set():
            await sleep_or_stop(self._stop, self.check_interval_s)
            if not self._stop.is_set():
                await self._update_health()

    async def _update_health(self) -> None:
        results = {}
        for name, check in self.readiness.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=3)
            except Exception:  # a failing check means "not ready", never a crash
                results[name] = False
        ok = all(results.values())
        if ok != self.serving:
            log.info("health: %s %s", "SERVING" if ok else "NOT_SERVING", results)
        self.serving = ok
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)


def not_implemented(method: str) -> DomainError:
    """For contract methods whose use case a later release adds (UNIMPLEMENTED / 501)."""
    from cqcommon.errors import NOT_IMPLEMENTED

    return DomainError(NOT_IMPLEMENTED, details={"method": method})
