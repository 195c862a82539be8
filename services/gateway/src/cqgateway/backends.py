"""Everything the gateway talks to, built from settings without connecting.

``Backends`` holds the gRPC stubs of the four services and the nightly job runner (one
``grpc.aio`` channel each,
from ``cqcommon.grpc_client.make_channel``), the gateway's own database (schema
``gateway``: staff accounts and the audit log), a Redis client, the HTTP client the
Alipay adapter uses, and the Alipay OAuth adapter. gRPC channels and the Redis client
connect lazily; ``open()`` opens the database pool; ``close()`` closes everything.
The app's lifespan calls both, so nothing connects at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
import httpx
import redis.asyncio as aioredis
from cqcommon.db import Database
from cqcommon.grpc_client import make_channel
from cqcommon.settings import Settings
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc
from cqtraffic.follow.v1 import follow_pb2_grpc
from cqtraffic.jobs.v1 import jobs_pb2_grpc
from cqtraffic.payment.v1 import payment_pb2_grpc
from cqtraffic.query.v1 import query_pb2_grpc
from cqtraffic.registry.v1 import registry_pb2_grpc

from cqgateway.alipay_oauth import AlipayOAuth, make_alipay_oauth

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub
    from cqtraffic.follow.v1.follow_pb2_grpc import FollowServiceAsyncStub
    from cqtraffic.jobs.v1.jobs_pb2_grpc import JobsServiceAsyncStub
    from cqtraffic.payment.v1.payment_pb2_grpc import PaymentServiceAsyncStub
    from cqtraffic.query.v1.query_pb2_grpc import QueryServiceAsyncStub
    from cqtraffic.registry.v1.registry_pb2_grpc import RegistryServiceAsyncStub

GATEWAY_SCHEMA = "gateway"
#: The peer services (the job runner's record server too), in the order /readyz reports them.
SERVICE_NAMES: tuple[str, ...] = ("query", "adjudication", "payment", "follow", "jobs")


@dataclass
class Backends:
    """Clients of every backing service; open with ``open()``, release with ``close()``."""

    query: QueryServiceAsyncStub
    adjudication: AdjudicationServiceAsyncStub
    payment: PaymentServiceAsyncStub
    follow: FollowServiceAsyncStub
    #: the nightly job runner's run records (R-JOB-*)
    jobs: JobsServiceAsyncStub
    #: service name (``SERVICE_NAMES``) → its channel (health checks)
    channels: Mapping[str, grpc.aio.Channel]
    db: Database
    redis: aioredis.Redis
    alipay_oauth: AlipayOAuth
    kafka_bootstrap_servers: str
    http: httpx.AsyncClient | None = None
    #: the registry, asked only whether the sandbox roster is loaded (/readyz, sandbox mode)
    registry: RegistryServiceAsyncStub | None = None
    _opened: bool = field(default=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, alipay_oauth: AlipayOAuth | None = None
    ) -> Backends:
        """Build every client from ``settings`` (``*_SERVICE_ADDR``, ``DATABASE_URL``, …)."""
        channels = {
            "query": make_channel(settings.query_service_addr),
            "adjudication": make_channel(settings.adjudication_service_addr),
            "payment": make_channel(settings.payment_service_addr),
            "follow": make_channel(settings.follow_service_addr),
            "jobs": make_channel(settings.jobs_service_addr),
        }
        # not in SERVICE_NAMES: /readyz asks it one question only, and in sandbox mode only
        channels["registry"] = make_channel(settings.registry_service_addr)
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.grpc_deadline_s))
        return cls(
            query=query_pb2_grpc.QueryServiceStub(channels["query"]),
            adjudication=adjudication_pb2_grpc.AdjudicationServiceStub(channels["adjudication"]),
            payment=payment_pb2_grpc.PaymentServiceStub(channels["payment"]),
            follow=follow_pb2_grpc.FollowServiceStub(channels["follow"]),
            jobs=jobs_pb2_grpc.JobsServiceStub(channels["jobs"]),
            registry=registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
            channels=channels,
            db=Database(
                settings.database_url,
                GATEWAY_SCHEMA,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
            ),
            # Short socket timeouts: Redis is a cache/limiter here, never worth a hung request.
            redis=aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2),
            alipay_oauth=alipay_oauth or make_alipay_oauth(settings, http),
            kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
            http=http,
        )

    async def open(self) -> None:
        """Open the database pool (waits for its first connections)."""
        if not self._opened:
            await self.db.open(wait=True)
            self._opened = True

    async def close(self) -> None:
        """Close every client; safe to call twice."""
        for channel in self.channels.values():
            await channel.close(grace=None)
        await self.redis.aclose()
        if self.http is not None:
            await self.http.aclose()
        await self.db.close()
        self._opened = False
