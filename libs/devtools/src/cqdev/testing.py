"""Helpers for integration tests: unique, valid registry records (so tests sharing one
database never collide), the gRPC calls that import them, and a publisher of events
whose producers are not built yet (they go to the broker exactly as a relay sends them).

Also the two HTTP helpers the gateway's tests share: an error answer's ``error`` object,
and request headers with a fresh trace id.

The payment provider of the in-process cluster is the session's fake Alipay (fixture
``fake_alipay``, whose keys are in ``test_settings``); the fake cannot post to the in-process
gateway by itself, so :meth:`Cluster.alipay_notify` delivers a notification through the
gateway's ASGI client.

Registry records are keyed by natural keys (ID number, VIN, licence number); an
:class:`Owner`'s records pin its random uuid4 ids, so a test knows them before the import.
:meth:`Cluster.import_unpinned` leaves the ids to the registry and learns them from its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import random
import secrets
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from cqcommon.events import event_type_of, new_envelope, topic_name
from cqcommon.protomap import date_to_proto, plate_type_to_proto
from cqtraffic.registry.v1 import registry_pb2 as reg

from cqdev.cluster import ALIPAY_NOTIFY_PATH
from cqdev.datagen.identifiers import make_id_number, make_vin

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cqcommon.db import Database
    from cqcommon.inbox import ConsumerConfig, EventConsumer, Handler
    from cqcommon.runner import ServiceRuntime
    from cqcommon.settings import Settings
    from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
    from google.protobuf.message import Message

    from cqdev.fake_alipay import FakeAlipay
    from cqdev.stack import Stack

T = TypeVar("T")
#: The in-process gateway's base URL (its client is ``Cluster.http``).
GATEWAY_BASE_URL = "http://gateway.test"
_rng = random.SystemRandom()
_SERIAL = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class Owner:
    """A person with an Alipay account, a C1 licence and one small car."""

    person_id: str
    alipay_user_id: str
    name: str
    id_number: str
    phone: str
    licence_id: str
    file_no: str
    vehicle_id: str
    plate_number: str
    vin: str

    def records(self, *, pinned: bool = True) -> list[reg.RegistryRecord]:
        """Person, vehicle and licence import records; ``pinned`` pins this owner's ids
        (otherwise the registry assigns them and the import's answer returns them)."""
        return [
            reg.RegistryRecord(
                person=reg.PersonRecord(
                    id_number=self.id_number,
                    name=self.name,
                    phone=self.phone,
                    alipay_user_id=self.alipay_user_id,
                    pinned_id=self.person_id if pinned else "",
                )
            ),
            reg.RegistryRecord(
                vehicle=reg.VehicleRecord(
                    vin=self.vin,
                    plate_type=plate_type_to_proto("02"),
                    plate_number=self.plate_number,
                    owner_id_number=self.id_number,
                    vehicle_kind="personal_small_car",
                    pinned_id=self.vehicle_id if pinned else "",
                )
            ),
            reg.RegistryRecord(
                driver=reg.DriverRecord(
                    licence_no=self.id_number,
                    holder_id_number=self.id_number,
                    file_no=self.file_no,
                    licence_class="C1",
                    first_issued_on=date_to_proto(dt.date(2015, 3, 1)),
                    points=0,
                    status="valid",
                    pinned_id=self.licence_id if pinned else "",
                )
            ),
        ]


def new_owner() -> Owner:
    """A fresh owner whose ids, plate, VIN and ID number no other test uses."""
    serial = "".join(_rng.choice(_SERIAL[:10]) for _ in range(5))
    letter = _rng.choice("ABCDFGH")
    vin_serial = "".join(_rng.choice("0123456789") for _ in range(6))
    return Owner(
        person_id=str(uuid.uuid4()),
        alipay_user_id="2088" + "".join(_rng.choice("0123456789") for _ in range(12)),
        name=_rng.choice("张李王刘陈杨赵黄周吴") + _rng.choice(["伟", "芳", "娜", "敏", "静"]),
        id_number=make_id_number(
            "500101",
            dt.date(1970, 1, 1) + dt.timedelta(days=_rng.randrange(11000)),
            _rng.randrange(1, 999),
        ),
        phone="139" + "".join(_rng.choice("0123456789") for _ in range(8)),
        licence_id=str(uuid.uuid4()),
        file_no="".join(_rng.choice("0123456789") for _ in range(12)),
        vehicle_id=str(uuid.uuid4()),
        plate_number=f"渝{letter}{serial}",
        vin=make_vin("LSV", "AB12C", "M", "1", vin_serial),
    )


def violation_code_record(code: str = "1345", points: int = 3) -> reg.RegistryRecord:
    return reg.RegistryRecord(
        violation_code=reg.ViolationCodeRegistered(
            code=code,
            description_zh="机动车行驶超过规定时速10%以上未达20%的",
            points=points,
            fine_min_fen=5_000,
            fine_max_fen=20_000,
        )
    )


def violation_body(plate_number: str, record_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid ``POST /internal/v1/violations`` body: a camera record of code 1345 (3 points,
    200 yuan, simple procedure) on ``plate_number``; ``overrides`` replace fields."""
    body: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": record_id,
        "plate_type": "02",
        "plate_number": plate_number,
        "violation_code": "1345",
        "occurred_at": "2026-11-01T08:30:00+08:00",
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
    }
    return body | overrides


async def fetch_rows(conninfo: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of one query on a connection of its own (what a test checks in the tables)."""
    import psycopg  # only the tests that read tables need the driver

    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute(query, params)
        return list(await cur.fetchall())


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an error answer (asserting that it is all the body holds)."""
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


def traced(headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """``headers`` plus a fresh ``traceparent``, and its trace id (to find the audit row)."""
    trace_id = secrets.token_hex(16)
    return headers | {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}, trace_id


@dataclass
class Cluster:
    """The in-process cluster of tests/conftest.py: settings, runtimes, gateway client."""

    settings: Settings
    runtimes: dict[str, ServiceRuntime]
    http: httpx.AsyncClient

    async def login(self, alipay_user_id: str) -> dict[str, str]:
        """Bearer headers of a sandbox mini-program user."""
        r = await self.http.post(
            "/api/v1/auth/alipay", json={"auth_code": f"sandbox:{alipay_user_id}"}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    async def import_records(self, records: list[reg.RegistryRecord]) -> reg.ImportRecordsResponse:
        """Import registry records through the registry service (which publishes them);
        the answer carries the id of each record, in order."""
        from cqcommon.grpc_client import call, make_channel
        from cqtraffic.registry.v1 import registry_pb2_grpc as reg_grpc

        channel = make_channel(self.settings.registry_service_addr)
        try:
            stub = reg_grpc.RegistryServiceStub(channel)
            request = reg.ImportRecordsRequest(records=records)
            response: reg.ImportRecordsResponse = await call(
                stub.ImportRecords, request, timeout_s=10
            )
        finally:
            await channel.close(None)
        return response

    async def mark_sandbox_roster_loaded(self) -> None:
        """Record a sandbox roster load with the registry without loading the roster: for
        tests that need a ready gateway (``/readyz`` 200 in sandbox mode) but bring their own
        data. The gate itself is tested with the real loader."""
        from cqcommon.grpc_client import call, make_channel
        from cqtraffic.registry.v1 import registry_pb2_grpc as reg_grpc

        channel = make_channel(self.settings.registry_service_addr)
        try:
            stub = reg_grpc.RegistryServiceStub(channel)
            request = reg.MarkSandboxRosterLoadedRequest()
            await call(stub.MarkSandboxRosterLoaded, request, timeout_s=10)
        finally:
            await channel.close(None)

    async def import_unpinned(self, owner: Owner) -> Owner:
        """Import ``owner``'s records without ids; ``owner`` with the ids the registry chose."""
        response = await self.import_records(owner.records(pinned=False))
        person_id, vehicle_id, licence_id = response.ids
        return dataclasses.replace(
            owner, person_id=person_id, vehicle_id=vehicle_id, licence_id=licence_id
        )

    async def publish(
        self,
        payload: Message,
        *,
        aggregate_id: str,
        producer: str = "test",
        occurred_at: dt.datetime | None = None,
        envelope: EventEnvelope | None = None,
    ) -> EventEnvelope:
        """Send one event to its topic as an outbox relay would (key = aggregate id).

        Pass ``envelope`` to send the very same event again (a redelivery).
        """
        from cqcommon.kafka import make_producer

        env = envelope or new_envelope(
            payload, aggregate_id=aggregate_id, producer=producer, occurred_at=occurred_at
        )
        topic = topic_name(event_type_of(payload).topic, self.settings.kafka_topic_prefix)

        def send() -> None:
            kafka = make_producer(self.settings, client_id="cqdev-test-publisher")
            try:
                kafka.send(
                    topic,
                    value=env.SerializeToString(),
                    key=env.aggregate_id.encode(),
                    headers=[("event_id", env.event_id.encode())],
                ).get(timeout=10)
            finally:
                kafka.close(timeout=5)

        await asyncio.get_running_loop().run_in_executor(None, functools.partial(send))
        return env

    async def applied(self, event_id: str, *, schema: str = "query") -> bool:
        """Whether a consumer in ``schema`` has applied (committed) the event."""
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.settings.database_url) as conn:
            cur = await conn.execute(
                f"SELECT 1 FROM {schema}.inbox WHERE event_id = %s",  # schema: from code
                (event_id,),
            )
            return await cur.fetchone() is not None

    async def record_violation(
        self, body: dict[str, Any], *, staff: dict[str, str] | None = None
    ) -> httpx.Response:
        """``POST /internal/v1/violations`` once adjudication knows the vehicle and the code:
        it learns both from registry events (the code catalogue on a topic of its own), so a
        404 and ``UNKNOWN_VIOLATION_CODE`` are retried until the events have arrived."""
        headers = staff or await self.staff()

        async def attempt() -> httpx.Response | None:
            r = await self.http.post("/internal/v1/violations", json=body, headers=headers)
            if r.status_code == 404:
                return None
            if r.status_code == 400 and error_body(r).get("code") == "UNKNOWN_VIOLATION_CODE":
                return None
            return r

        return await eventually(attempt)

    async def alipay_notify(
        self,
        fake: FakeAlipay,
        out_trade_no: str,
        *,
        forged: bool = False,
        overrides: Mapping[str, str] | None = None,
        trade_status: str | None = None,
    ) -> str:
        """Post the fake's signed ``trade_status_sync`` notification of a paid (or closed)
        trade to this gateway's ``/api/v1/alipay/notify``; the gateway's answer body
        (``success`` once recorded). Pay first: ``fake.pay(out_trade_no)``."""
        return await fake.send_notification(
            out_trade_no,
            notify_url=ALIPAY_NOTIFY_PATH,
            http=self.http,
            forged=forged,
            overrides=overrides,
            trade_status=trade_status,
        )

    async def staff(self, username: str = "clerk01") -> dict[str, str]:
        r = await self.http.post(
            "/internal/v1/auth/login",
            json={"username": username, "password": self.settings.sandbox_staff_password},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


#: Loops whose default executor was widened for in-process clusters.
_WIDENED: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
#: Worker threads for a test loop that hosts whole clusters.
TEST_LOOP_WORKERS = 64


def _enough_worker_threads(loop: asyncio.AbstractEventLoop) -> None:
    """Give the loop enough worker threads for several clusters at once. Every consumer
    blocks one thread in kafka-python's poll (up to its poll timeout) and every relay one
    while it sends; the default executor has min(32, cores + 4) threads, 6 on this
    machine, which one cluster's six consumers already fill, so a second, isolated
    cluster's consumers waited their turn for tens of seconds. A service process has
    one or two consumers and one relay, so production keeps the default."""
    if loop not in _WIDENED:
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=TEST_LOOP_WORKERS, thread_name_prefix="cqdev-test")
        )
        _WIDENED.add(loop)


@contextlib.asynccontextmanager
async def in_process_cluster(
    settings: Settings, *, instrument: bool = False
) -> AsyncIterator[Cluster]:
    """Every service's runtime (gRPC server, relay, consumers) and the job runner's gRPC
    server (``runtimes["jobs"]``) in this event loop on a free port, and the gateway app with its lifespan behind httpx's ASGI transport.

    Services call each other (query asks adjudication), so every address is chosen before
    the first one starts. ``instrument`` adds the FastAPI server spans that
    ``python -m cqgateway serve`` adds when tracing is on.
    """
    from cqadjudication.wiring import SPEC as ADJUDICATION
    from cqcommon.runner import ServiceRuntime
    from cqfollow.wiring import SPEC as FOLLOW
    from cqgateway.app import create_app
    from cqjobs.wiring import SPEC as JOBS
    from cqpayment.wiring import SPEC as PAYMENT
    from cqquery.wiring import SPEC as QUERY
    from cqregistry.wiring import SPEC as REGISTRY

    from cqdev.stack import free_port

    _enough_worker_threads(asyncio.get_running_loop())
    # the job runner last: its gRPC server serves the run records (its runs are started by
    # the tests themselves, with cqjobs.wiring.build_runner on this cluster's settings)
    specs = (REGISTRY, ADJUDICATION, QUERY, PAYMENT, FOLLOW, JOBS)
    ports = {spec.name: free_port() for spec in specs}
    addrs = {f"{name}_service_addr": f"127.0.0.1:{port}" for name, port in ports.items()}
    settings = settings.model_copy(update=addrs)
    runtimes: dict[str, ServiceRuntime] = {}
    try:
        for spec in specs:
            runtime = ServiceRuntime(spec, settings, port=ports[spec.name])
            await runtime.start()
            runtimes[spec.name] = runtime
        app = create_app(settings)
        if instrument:
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor.instrument_app(app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=GATEWAY_BASE_URL
            ) as http,
        ):
            yield Cluster(settings, runtimes, http)
    finally:
        for runtime in reversed(list(runtimes.values())):
            await runtime.stop(grace_s=1)


@contextlib.asynccontextmanager
async def isolated_cluster(
    stack: Stack, base: Settings, *, label: str = "iso"
) -> AsyncIterator[Cluster]:
    """:func:`in_process_cluster` on state of its own: a fresh, migrated database
    ``cqtest_<label>_<random>``, another Redis db index than ``base``'s and its own topic
    prefix; everything else (broker, secrets, timeouts) as ``base``. Dropped and flushed at
    the end.

    For tests whose story changes shared fixtures (the sandbox roster's people and records):
    the session's cluster stays as the other tests expect it, and the story starts from the
    same state whatever ran before it.
    """
    import redis.asyncio as aioredis
    from cqcommon.migrations import apply_migrations

    from cqdev.pytest_plugin import migration_targets
    from cqdev.stack import create_database, drop_database, with_database, with_redis_db

    suffix = uuid.uuid4().hex[:8]
    dbname = f"cqtest_{label}_{suffix}"
    base_index = int(urlsplit(base.redis_url).path.lstrip("/") or "0")
    redis_url = with_redis_db(
        stack.redis_url, _rng.choice([i for i in range(1, 16) if i != base_index])
    )
    settings = base.model_copy(
        update={
            "database_url": with_database(stack.database_url, dbname),
            "redis_url": redis_url,
            "kafka_topic_prefix": f"{base.kafka_topic_prefix}{label}-{suffix}.",
        }
    )

    async def flush() -> None:
        client = aioredis.from_url(redis_url, socket_connect_timeout=5)
        try:
            await client.flushdb()
        finally:
            await client.aclose()

    await asyncio.to_thread(create_database, stack.database_url, dbname)
    try:
        await flush()
        for schema, folder in migration_targets():
            await apply_migrations(settings.database_url, schema, folder)
        async with in_process_cluster(settings) as cluster:
            yield cluster
    finally:
        try:
            await flush()
        finally:
            await asyncio.to_thread(drop_database, stack.database_url, dbname)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, interval_s: float = 0.2
) -> T:
    """Poll ``probe`` until it returns something truthy (events are asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)


def produce_raw(settings: Settings, base_topic: str, values: list[bytes], *, key: bytes) -> None:
    """Put ``values`` on ``base_topic`` (under the run's prefix), one key, in order: what a
    relay or a misbehaving producer would have sent (blocking: call via ``to_thread``)."""
    from cqcommon.kafka import ensure_topics, make_producer

    topic = topic_name(base_topic, settings.kafka_topic_prefix)
    ensure_topics(settings, [topic])
    producer = make_producer(settings, client_id="test-producer")
    try:
        for value in values:
            producer.send(topic, value=value, key=key).get(10)
    finally:
        producer.close(5)


def consumer_on(
    db: Database,
    settings: Settings,
    group: str,
    handlers: Mapping[str, Handler],
    *,
    topics: Sequence[str],
    config: ConsumerConfig | None = None,
) -> EventConsumer:
    """An EventConsumer of ``group`` on ``topics`` with ``handlers``, wired to the run's
    broker as a service's would be (what the plumbing tests build around a handler)."""
    from cqcommon.inbox import ConsumerConfig, EventConsumer
    from cqcommon.kafka import ensure_topics, make_consumer, make_producer

    return EventConsumer(
        db=db,
        group_id=group,
        topics=list(topics),
        handlers=handlers,
        consumer_factory=functools.partial(
            make_consumer, settings, group_id=group, client_id=group
        ),
        producer_factory=functools.partial(make_producer, settings, client_id=f"{group}-dlq"),
        topic_prefix=settings.kafka_topic_prefix,
        ensure_topics=functools.partial(ensure_topics, settings),
        config=config or ConsumerConfig(),
    )


async def consume_until(
    consumer: EventConsumer, done: Callable[[], bool], *, timeout_s: float = 30.0
) -> None:
    """Run ``consumer`` until ``done()`` holds (its counters, typically), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))

    async def probe() -> bool:
        return done()

    try:
        await eventually(probe, timeout_s=timeout_s)
    finally:
        stop.set()
        await task
