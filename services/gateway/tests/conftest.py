"""Fixtures of the gateway tests: settings on the test session's PostgreSQL database,
Redis db and Tansu broker (the ``test_settings`` fixture of ``cqdev.pytest_plugin``, the one
way tests get them), and ``FakeServices`` — an in-process grpc.aio server implementing
QueryService, AdjudicationService, PaymentService, FollowService, JobsService, the
registry's sandbox roster status (``roster_loaded``, true unless a test says otherwise) and
the standard health service.

``FakeServices`` is a *test double for the HTTP ↔ gRPC mapping only*: each method
answers whatever the test scripted (a response, or a ``DomainError`` sent exactly as
``cqcommon.grpc_server.DomainErrorInterceptor`` sends it: status + ``error-bin``
trailing metadata). It holds no business rules; the real services are exercised by
the end-to-end tests under the repository's ``tests/``.

The endpoint tests' shared steps are fixtures here too: ``user_headers`` (a sandbox user's
login) and ``audit_row`` (the audit entry of one trace, read by a supervisor).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from cqcommon.errors import DomainError
from cqcommon.grpc_errors import ERROR_METADATA_KEY, status_for
from cqcommon.settings import Settings
from cqgateway.app import create_app
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc
from cqtraffic.follow.v1 import follow_pb2_grpc
from cqtraffic.jobs.v1 import jobs_pb2_grpc
from cqtraffic.payment.v1 import payment_pb2_grpc
from cqtraffic.query.v1 import query_pb2 as q
from cqtraffic.query.v1 import query_pb2_grpc
from cqtraffic.registry.v1 import registry_pb2 as reg
from cqtraffic.registry.v1 import registry_pb2_grpc
from fastapi import FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer  # what grpc_health.v1.health.aio re-exports

SECRET = "gateway-test-secret-0123456789abcdef-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the gRPC test double -----------------------------------------------------------------
Script = Callable[[Any], Any]  # request -> response message, or raises DomainError


class FakeServices(
    query_pb2_grpc.QueryServiceServicer,
    adjudication_pb2_grpc.AdjudicationServiceServicer,
    payment_pb2_grpc.PaymentServiceServicer,
    follow_pb2_grpc.FollowServiceServicer,
    jobs_pb2_grpc.JobsServiceServicer,
    registry_pb2_grpc.RegistryServiceServicer,
):
    """Scripted answers per method name; records every request it received."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: dict[str, list[Any]] = {}
        #: what GetSandboxRosterStatus answers (/readyz's sandbox_roster check)
        self.roster_loaded = True
        self.port = 0
        self._server: grpc.aio.Server | None = None

    def script(self, method: str, answer: Script) -> None:
        self.scripts[method] = answer

    def reset(self) -> None:
        self.scripts.clear()
        self.requests.clear()
        self.roster_loaded = True

    async def _answer(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.requests.setdefault(method, []).append(request)
        script = self.scripts.get(method)
        if script is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} not scripted")
        try:
            return script(request)
        except DomainError as exc:
            # Exactly what DomainErrorInterceptor does in the real services.
            context.set_trailing_metadata(((ERROR_METADATA_KEY, exc.to_bytes()),))
            await context.abort(status_for(exc), exc.message_en)

    # QueryService
    async def ResolveUser(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ResolveUser", request, context)

    async def ListViolations(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListViolations", request, context)

    async def GetMe(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetMe", request, context)

    async def LookupVehicle(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("LookupVehicle", request, context)

    async def LookupLicence(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("LookupLicence", request, context)

    async def GetViolation(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetViolation", request, context)

    async def StaffGetVehicle(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("StaffGetVehicle", request, context)

    async def StaffGetLicence(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("StaffGetLicence", request, context)

    async def GetRelations(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetRelations", request, context)

    # AdjudicationService
    async def RecordViolation(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("RecordViolation", request, context)

    async def StartHandling(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("StartHandling", request, context)

    async def CompleteVerification(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("CompleteVerification", request, context)

    async def SubmitHandling(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("SubmitHandling", request, context)

    async def GetHandling(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetHandling", request, context)

    async def HandleAtCounter(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("HandleAtCounter", request, context)

    async def DisputeViolation(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("DisputeViolation", request, context)

    async def UndisputeViolation(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("UndisputeViolation", request, context)

    async def ListPointsBuyingAlerts(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListPointsBuyingAlerts", request, context)

    # PaymentService
    async def GetDecision(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetDecision", request, context)

    async def CreatePayment(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("CreatePayment", request, context)

    async def CreateCounterPayment(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("CreateCounterPayment", request, context)

    async def GetPayment(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetPayment", request, context)

    async def RecordProviderNotification(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("RecordProviderNotification", request, context)

    async def FileFeedback(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("FileFeedback", request, context)

    async def ListFeedback(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListFeedback", request, context)

    async def ListRefunds(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListRefunds", request, context)

    async def ApproveRefund(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ApproveRefund", request, context)

    async def GetReceipt(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetReceipt", request, context)

    # FollowService (SeedFollow is not the gateway's; RunJob, of payment and follow alike,
    # is defined once so that the two bases' signatures agree)
    async def RunJob(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("RunJob", request, context)

    async def RequestVehicleFollow(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("RequestVehicleFollow", request, context)

    async def SubmitSmsCode(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("SubmitSmsCode", request, context)

    async def ListIncomingRequests(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListIncomingRequests", request, context)

    async def ApproveRequest(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ApproveRequest", request, context)

    async def DeclineRequest(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("DeclineRequest", request, context)

    async def ListFollows(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListFollows", request, context)

    async def ListFollowers(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListFollowers", request, context)

    async def UnfollowVehicle(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("UnfollowVehicle", request, context)

    async def RevokeFollower(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("RevokeFollower", request, context)

    async def FollowLicence(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("FollowLicence", request, context)

    async def UnfollowLicence(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("UnfollowLicence", request, context)

    async def ListSandboxSms(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListSandboxSms", request, context)

    # PaymentService / AdjudicationService: the nightly jobs' counter reads
    async def GetReconciliation(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetReconciliation", request, context)

    async def GetDecisionNotice(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("GetDecisionNotice", request, context)

    # JobsService (the nightly job runner's records)
    async def ListRuns(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return await self._answer("ListRuns", request, context)

    # RegistryService: only the sandbox roster status the gateway's /readyz asks for
    async def GetSandboxRosterStatus(  # noqa: N802 - gRPC method name
        self, request: Any, context: Any
    ) -> reg.GetSandboxRosterStatusResponse:
        self.requests.setdefault("GetSandboxRosterStatus", []).append(request)
        return reg.GetSandboxRosterStatusResponse(loaded=self.roster_loaded)

    async def start(self) -> None:
        server = grpc.aio.server()
        query_pb2_grpc.add_QueryServiceServicer_to_server(self, server)
        adjudication_pb2_grpc.add_AdjudicationServiceServicer_to_server(self, server)
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(self, server)
        follow_pb2_grpc.add_FollowServiceServicer_to_server(self, server)
        jobs_pb2_grpc.add_JobsServiceServicer_to_server(self, server)
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(self, server)
        servicer = HealthServicer()
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)


@pytest.fixture(scope="session")
async def fake_services() -> AsyncIterator[FakeServices]:
    # Only the methods the gateway calls are scripted; the rest stay abstract on purpose.
    fake = FakeServices()  # type: ignore[abstract]
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def fake(fake_services: FakeServices) -> Iterator[FakeServices]:
    fake_services.reset()
    yield fake_services
    fake_services.reset()


# -- PostgreSQL, Redis, Kafka: the session's test stack ---------------------------------------
@pytest.fixture(scope="session")
def database_url(test_settings: Settings) -> str:
    """The session's fresh test database (the gateway migrates its schema at start)."""
    return test_settings.database_url


@pytest.fixture(scope="session")
def redis_url(test_settings: Settings) -> str:
    return test_settings.redis_url


@pytest.fixture(scope="session")
def kafka_bootstrap(test_settings: Settings) -> str:
    """The session's test broker (only the "everything is up" readiness test uses it)."""
    return test_settings.kafka_bootstrap_servers


def make_settings(database_url: str, redis_url: str, grpc_port: int, **overrides: Any) -> Settings:
    addr = f"127.0.0.1:{grpc_port}"
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",  # nothing listens: Kafka "down"
        "query_service_addr": addr,
        "adjudication_service_addr": addr,
        "payment_service_addr": addr,
        "follow_service_addr": addr,
        "jobs_service_addr": addr,
        "registry_service_addr": addr,
        "token_secret": SECRET,
        "sandbox_mode": True,
        "sandbox_staff_password": "sandbox",
        "max_body_bytes": 4096,
        "grpc_deadline_s": 2.0,
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, fake_services: FakeServices) -> Settings:
    return make_settings(database_url, redis_url, fake_services.port)


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan run (ASGITransport does not run lifespans) and a client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield app, client


GatewayFactory = Callable[
    ..., contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]
]


@pytest.fixture
def gateway_factory(
    database_url: str, redis_url: str, fake_services: FakeServices
) -> GatewayFactory:
    """``async with gateway_factory(**settings_overrides) as (app, client)``: a separate app."""

    def factory(
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
        return running_app(make_settings(database_url, redis_url, fake_services.port, **overrides))

    return factory


@pytest.fixture
def dead_addr() -> str:
    """An address where nothing listens (a service that is down)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
async def gateway(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(settings) as pair:
        yield pair


@pytest.fixture
def app(gateway: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return gateway[0]


@pytest.fixture
def client(gateway: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return gateway[1]


async def staff_token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/internal/v1/auth/login", json={"username": username, "password": "sandbox"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


@pytest.fixture
async def clerk_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await staff_token(client, 'clerk01')}"}


@pytest.fixture
async def supervisor_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await staff_token(client, 'super01')}"}


UserHeaders = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def user_headers(client: httpx.AsyncClient, fake: FakeServices) -> UserHeaders:
    """``await user_headers(person_id="p-1")``: the headers of a sandbox Alipay login (user
    2088000000000001) that ``FakeServices`` resolves to ``person_id``."""

    async def login(person_id: str = "p-1") -> dict[str, str]:
        fake.script("ResolveUser", lambda req: q.ResolveUserResponse(person_id=person_id))
        r = await client.post("/api/v1/auth/alipay", json={"auth_code": "sandbox:2088000000000001"})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    return login


AuditRow = Callable[[str], Awaitable[dict[str, Any]]]


@pytest.fixture
def audit_row(client: httpx.AsyncClient, supervisor_headers: dict[str, str]) -> AuditRow:
    """``await audit_row(trace_id)``: the one audit entry of that trace (a supervisor reads
    the audit log)."""

    async def read(trace_id: str) -> dict[str, Any]:
        r = await client.get(
            "/internal/v1/audit", params={"limit": "500"}, headers=supervisor_headers
        )
        assert r.status_code == 200, r.text
        rows = [row for row in r.json()["entries"] if row["trace_id"] == trace_id]
        assert len(rows) == 1, rows
        return dict(rows[0])

    return read
