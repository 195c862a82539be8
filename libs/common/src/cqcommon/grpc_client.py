"""gRPC client channels to peer services: tracing interceptor and a deadline on every call.

Use ``call(stub.Method, request, settings)``-style helpers or set ``timeout=`` yourself;
never call a peer without a deadline (habit 5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from cqcommon.errors import DomainError
from cqcommon.grpc_errors import domain_error_from_rpc
from cqcommon.telemetry import tracing_active

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def make_channel(addr: str) -> grpc.aio.Channel:
    """An insecure aio channel (loopback / in-cluster), with client spans when tracing.

    ``addr`` may list several replicas (``ipv4:127.0.0.1:50051,127.0.0.1:50061``): the calls
    are then spread over them round-robin, where gRPC's default (pick_first) would send
    every call to the first one that answers.
    """
    interceptors: list[grpc.aio.ClientInterceptor] = []
    if tracing_active():
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors.extend(aio_client_interceptors())  # type: ignore[no-untyped-call]
    options: list[tuple[str, str | int]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ]
    if "," in addr:
        options.append(("grpc.lb_policy_name", "round_robin"))
    return grpc.aio.insecure_channel(addr, interceptors=interceptors, options=options)


async def call(method: Callable[..., Awaitable[Resp]], request: Req, *, timeout_s: float) -> Resp:
    """Call a unary method with a deadline; remote domain errors come back as ``DomainError``."""
    try:
        return await method(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        raise domain_error_from_rpc(exc) from exc


__all__ = ["DomainError", "call", "make_channel"]
