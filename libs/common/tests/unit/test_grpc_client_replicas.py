"""``make_channel`` with several replicas in one target spreads the calls over them.

The day-mix benchmark points the gateways at two query replicas this way
(``ipv4:127.0.0.1:p1,127.0.0.1:p2``); gRPC's default policy would send every call to the
first. Two loopback health servers count what reaches each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from cqcommon.grpc_client import make_channel
from cqdev.stack import free_port
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


class _Counting(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, name: str, seen: Counter[str]) -> None:
        self.name = name
        self.seen = seen

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        self.seen[self.name] += 1
        return await continuation(handler_call_details)


async def _calls_per_replica(target_of: Callable[[list[int]], str], calls: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    ports = [free_port(), free_port()]
    servers = []
    try:
        for i, port in enumerate(ports):
            server = grpc.aio.server(interceptors=[_Counting(f"replica{i}", seen)])
            health_pb2_grpc.add_HealthServicer_to_server(
                health.aio.HealthServicer(),  # type: ignore[attr-defined]
                server,
            )
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            servers.append(server)
        channel = make_channel(target_of(ports))
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(calls):
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        finally:
            await channel.close(None)
    finally:
        for server in servers:
            await server.stop(0)
    return seen


async def test_a_target_listing_two_replicas_spreads_calls_round_robin() -> None:
    seen = await _calls_per_replica(lambda p: f"ipv4:127.0.0.1:{p[0]},127.0.0.1:{p[1]}", 20)
    # the first calls may all go to whichever connection was ready first; then they alternate
    assert sum(seen.values()) == 20
    assert min(seen["replica0"], seen["replica1"]) >= 5


async def test_a_single_address_target_reaches_that_address_only() -> None:
    seen = await _calls_per_replica(lambda p: f"127.0.0.1:{p[1]}", 5)
    assert seen == Counter({"replica1": 5})
