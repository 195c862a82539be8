"""The one way every service starts: ``python -m <service> migrate|serve|relay|consume|run``.

A service describes itself with a ``ServiceSpec`` (schema, migrations, gRPC registration,
consumers); ``ServiceRuntime`` starts the roles asked for in one asyncio process — the
gRPC server, the outbox relay, the event consumers — and stops them in order on SIGTERM.
kafka-python is blocking, so the relay and consumers run its calls in worker threads
(``asyncio.to_thread``); everything else is asyncio (grpc.aio and psycopg async).
Tests start several runtimes in one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
import redis.asyncio as redis_async
from kafka.errors import KafkaError

from cqcommon.asyncutil import settle_heap, sleep_or_stop
from cqcommon.clock import Clock, SystemClock
from cqcommon.db import Database
from cqcommon.events import topic_name
from cqcommon.grpc_client import make_channel
from cqcommon.grpc_server import GrpcServer, ReadinessCheck
from cqcommon.inbox import EventConsumer, Handler
from cqcommon.kafka import ensure_topics, kafka_reachable, make_consumer, make_producer
from cqcommon.logs import configure_logging
from cqcommon.metrics import (
    BACKGROUND_TASK_RESTARTS,
    ConsumerLagReader,
    MetricsEndpoint,
    MetricsSampler,
    SampleFn,
    ServiceSamplers,
    consumer_lag_sampler,
    outbox_sampler,
    serve_metrics,
)
from cqcommon.migrations import apply_migrations
from cqcommon.outbox import OutboxRelay, RelayConfig
from cqcommon.retention import EventLogPruner, retention_from
from cqcommon.settings import Settings
from cqcommon.telemetry import setup_telemetry

log = logging.getLogger(__name__)

ROLES = ("serve", "relay", "consume")


@dataclass
class ServiceContext:
    """What a service's wiring gets: settings, its database, Redis, a clock, peer channels."""

    settings: Settings
    db: Database
    redis: redis_async.Redis
    clock: Clock
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, addr: str) -> grpc.aio.Channel:
        """A shared channel to a peer service (created once per address)."""
        if addr not in self._channels:
            self._channels[addr] = make_channel(addr)
        return self._channels[addr]

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close(None)
        self._channels.clear()
        await self.redis.aclose()


def redis_client(settings: Settings) -> redis_async.Redis:
    """The process's Redis client on a blocking pool: under a burst, a call beyond
    ``REDIS_MAX_CONNECTIONS`` waits for a connection (redis-py's default pool raises "Too many
    connections" at 100 instead, which a request would see as a failure)."""
    pool = redis_async.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_s,
    )
    return redis_async.Redis.from_pool(pool)  # closing the client closes the pool


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group: its topics and a factory for its handlers by event type."""

    group_id: str
    topics: Sequence[str]
    handlers: Callable[[ServiceContext], Mapping[str, Handler]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    schema: str
    migrations_dir: Path
    addr: Callable[[Settings], str]
    register: Callable[[grpc.aio.Server, ServiceContext], Sequence[str]]
    consumers: Sequence[ConsumerSpec] = ()
    publishes_events: bool = True
    #: the service's own sampled gauges (``cqcommon.metrics``), run by its ``serve`` role
    samplers: ServiceSamplers | None = None


class ServiceRuntime:
    """Starts and stops the roles of one service inside the current event loop."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        *,
        roles: Sequence[str] = ROLES,
        clock: Clock | None = None,
        port: int | None = None,
    ) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        self.spec = spec
        self.settings = settings
        self.roles = tuple(roles)
        self.clock = clock or SystemClock()
        self.port = port
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.server: GrpcServer | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []
        self.pruner: EventLogPruner | None = None
        self.ctx: ServiceContext | None = None
        self.metrics: MetricsSampler | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        self._lag_reader: ConsumerLagReader | None = None
        #: the wait before a crashed background loop starts again (doubling, up to 30 s)
        self.restart_backoff_s = 1.0

    async def start(self) -> None:
        s = self.settings
        setup_telemetry(self.spec.name, s)
        await apply_migrations(s.database_url, self.spec.schema, self.spec.migrations_dir)
        db = Database(
            s.database_url,
            self.spec.schema,
            min_size=s.db_pool_min,
            max_size=s.db_pool_max,
            notify_outbox=s.outbox_listen,
        )
        await db.open()
        self.ctx = ServiceContext(s, db, redis_client(s), self.clock)
        ensure = partial(ensure_topics, s)
        if "relay" in self.roles and self.spec.publishes_events:
            self.relay = OutboxRelay(
                db,
                partial(make_producer, s, client_id=f"{self.spec.name}-relay"),
                topic_prefix=s.kafka_topic_prefix,
                ensure_topics=ensure,
                config=RelayConfig(
                    listen=s.outbox_listen, poll_interval_s=s.outbox_poll_interval_s
                ),
            )
            self._spawn(self.relay.run, "relay")
        if "consume" in self.roles:
            for cspec in self.spec.consumers:
                consumer = build_consumer(self.spec.name, cspec, self.ctx, ensure_topics=ensure)
                self.consumers.append(consumer)
                self._spawn(consumer.run, cspec.group_id)
        # the event log's retention, by whoever owns each part (cqcommon.retention)
        if self.relay is not None or self.consumers:
            self.pruner = EventLogPruner(
                db,
                retention_from(s),
                outbox=self.relay is not None,
                groups=[c.group_id for c in self.consumers],
            )
            self._spawn(self.pruner.run, "event-log-pruner")
        if "serve" in self.roles:
            port = self.port if self.port is not None else s.service_port(self.spec.addr(s))
            ctx = self.ctx
            readiness: dict[str, ReadinessCheck] = {"postgresql": db.ping}
            if self.spec.publishes_events or self.spec.consumers:
                readiness["kafka"] = partial(asyncio.to_thread, kafka_reachable, s)
            self.server = GrpcServer(
                bind=f"{s.grpc_bind_host}:{port}",
                register=lambda server: self.spec.register(server, ctx),
                readiness=readiness,
                metrics_service=self.spec.name,
            )
            self.port = self.server.port
            await self.server.start()
        self._start_metrics(db)
        log.info("%s started (%s)", self.spec.name, ", ".join(self.roles))

    def _start_metrics(self, db: Database) -> None:
        """The sampled gauges of the roles this process runs; with ``METRICS_PORT`` set, the
        ``/metrics`` endpoint and the sampling task (tests call ``sample_once`` instead)."""
        s = self.settings
        samplers: dict[str, SampleFn] = {}
        if self.relay is not None:
            samplers["outbox"] = outbox_sampler(db, self.spec.name)
        if self.consumers:
            self._lag_reader = ConsumerLagReader(s, client_id=f"{self.spec.name}-metrics")
            groups = {
                c.group_id: (
                    s.kafka_topic_prefix + c.group_id,
                    [topic_name(t, s.kafka_topic_prefix) for t in c.topics],
                )
                for c in self.spec.consumers
            }
            samplers["consumer_lag"] = consumer_lag_sampler(
                self._lag_reader, self.spec.name, groups, timeout_s=10
            )
        if "serve" in self.roles and self.spec.samplers is not None:
            samplers.update(self.spec.samplers(db))
        self.metrics = MetricsSampler(
            self.spec.name, samplers, interval_s=s.metrics_sample_interval_s
        )
        if s.metrics_port is not None:
            self.metrics_endpoint = serve_metrics(s.grpc_bind_host, s.metrics_port)
            self._spawn(self.metrics.run, "metrics")

    def _spawn(self, run: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
        task = asyncio.create_task(self._supervised(run, name), name=f"{self.spec.name}:{name}")
        task.add_done_callback(self._task_done)
        self.tasks.append(task)

    async def _supervised(self, run: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
        """``run(stop)`` until stopping. Each background loop catches its own failures; one
        that escapes anyway is logged, counted (``cqtraffic_background_task_restarts``,
        alert ``CqtrafficBackgroundTaskRestarting``) and the loop started again after a
        backoff, instead of a process that still serves gRPC but no longer relays or
        consumes, with nothing but one log line to tell."""
        crashes = 0
        while not self.stop_event.is_set():
            try:
                await run(self.stop_event)
                return
            except Exception:
                crashes += 1
                BACKGROUND_TASK_RESTARTS.labels(self.spec.name, name).inc()
                log.exception("%s:%s crashed; starting it again", self.spec.name, name)
                backoff = self.restart_backoff_s * 2 ** (crashes - 1)
                await sleep_or_stop(self.stop_event, min(30.0, backoff))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self.stop_event.is_set():
            log.error("%s crashed", task.get_name(), exc_info=task.exception())

    async def stop(self, grace_s: float = 5.0) -> None:
        """Health NOT_SERVING, drain gRPC, stop relay/consumers, close the pool."""
        if self.server is not None:
            await self.server.stop(grace_s)
        self.stop_event.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=grace_s + 15)
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()
        if self._lag_reader is not None:
            await asyncio.to_thread(self._lag_reader.close)
        if self.ctx is not None:
            await self.ctx.close()
            await self.ctx.db.close()
        log.info("%s stopped", self.spec.name)


def build_consumer(
    service: str,
    cspec: ConsumerSpec,
    ctx: ServiceContext,
    *,
    ensure_topics: Callable[[list[str]], None] | None = None,
) -> EventConsumer:
    """The event consumer of one group, as the ``consume`` role and the dead-letter replay
    both run it (the replay feeds it records itself and never polls its group)."""
    s = ctx.settings
    return EventConsumer(
        db=ctx.db,
        group_id=cspec.group_id,
        topics=list(cspec.topics),
        handlers=cspec.handlers(ctx),
        consumer_factory=partial(
            make_consumer,
            s,
            group_id=s.kafka_topic_prefix + cspec.group_id,
            client_id=f"{service}-{cspec.group_id}",
        ),
        producer_factory=partial(make_producer, s, client_id=f"{service}-dlq"),
        topic_prefix=s.kafka_topic_prefix,
        ensure_topics=ensure_topics,
    )


async def _run_until_signal(runtime: ServiceRuntime) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    settle_heap()
    await stop.wait()
    await runtime.stop()


async def _dead_letters(
    spec: ServiceSpec, settings: Settings, group: str | None, replay: bool, limit: int | None
) -> int:
    """``dead-letters``: list a consumer group's dead letters, or replay them (see
    ``cqcommon.dead_letters``). With no ``--group``, every group of the service."""
    from cqcommon.dead_letters import list_dead_letters, replay_dead_letters

    groups = [c for c in spec.consumers if group is None or c.group_id == group]
    if not groups:
        known = ", ".join(c.group_id for c in spec.consumers) or "none"
        print(f"{spec.name}: no consumer group {group!r} (groups: {known})")
        return 2
    if not replay:
        for cspec in groups:
            letters = await list_dead_letters(settings, cspec.group_id, limit=limit)
            print(f"{cspec.group_id}: {len(letters)} dead letters to replay")
            for d in letters:
                print(
                    f"  {d.partition}@{d.offset} {d.event_type or '?'} {d.event_id or '?'}"
                    f" from {d.source}: {d.error[:200]}"
                )
        return 0
    setup_telemetry(spec.name, settings)
    db = Database(settings.database_url, spec.schema, min_size=1, max_size=2)
    await db.open()
    ctx = ServiceContext(settings, db, redis_client(settings), SystemClock())
    try:
        for cspec in groups:
            consumer = build_consumer(spec.name, cspec, ctx)
            report = await replay_dead_letters(consumer, settings, limit=limit)
            print(
                f"{cspec.group_id}: {report.read} read, {consumer.applied_total} applied,"
                f" {consumer.duplicates_total} applied before,"
                f" {consumer.dead_lettered_total} dead-lettered again"
            )
    finally:
        await ctx.close()
        await db.close()
    return 0


async def _outbox(spec: ServiceSpec, settings: Settings, action: str, since: str | None) -> int:
    """``outbox status`` / ``outbox republish --since``: see ``cqcommon.outbox_admin``."""
    from datetime import datetime

    from cqcommon.outbox_admin import outbox_status, republish_since

    db = Database(settings.database_url, spec.schema, min_size=1, max_size=1)
    await db.open()
    when: datetime | None = None
    try:
        if action == "republish":
            if since is None:
                print("outbox republish needs --since (an ISO time with its zone)")
                return 2
            when = datetime.fromisoformat(since)
            count = await republish_since(db, when)
            print(f"{spec.name}: {count} events marked pending again; the relay sends them")
        status = await outbox_status(db)
        print(
            f"{spec.name}: {status.pending} pending (oldest {status.oldest_pending_at}),"
            f" {status.published} published (last {status.last_published_at},"
            f" oldest kept {status.oldest_published_at})"
        )
        kept_from = status.oldest_published_at
        if when is not None and kept_from is not None and when < kept_from:
            print(
                f"{spec.name}: events published before {kept_from} were deleted after"
                f" OUTBOX_RETENTION_H ({settings.outbox_retention_h} h) and cannot be sent"
                " again from here"
            )
    finally:
        await db.close()
    return 0


def build_parser(name: str) -> argparse.ArgumentParser:
    """The command line of the service called ``name``."""
    parser = argparse.ArgumentParser(prog=f"python -m cq{name.replace('-', '')}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply this service's migrations and exit")
    sub.add_parser("serve", help="gRPC server only")
    sub.add_parser("relay", help="outbox relay only")
    sub.add_parser("consume", help="event consumers only")
    sub.add_parser("run", help="gRPC server, outbox relay and consumers in one process")
    dlq = sub.add_parser(
        "dead-letters", help="list a consumer group's dead-letter topic, or --replay it"
    )
    dlq.add_argument("--group", help="one consumer group (default: every group of the service)")
    dlq.add_argument("--replay", action="store_true", help="apply them (default: only list)")
    dlq.add_argument("--limit", type=int, default=None, help="at most this many records")
    outbox = sub.add_parser("outbox", help="the outbox's status, or republish after a broker loss")
    outbox.add_argument("action", choices=("status", "republish"))
    outbox.add_argument("--since", help="republish: events published at or after this ISO time")
    return parser


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    """Command line of every service (``python -m <service> ...``)."""
    args = build_parser(spec.name).parse_args(argv)
    settings = Settings()
    configure_logging(spec.name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(
            apply_migrations(settings.database_url, spec.schema, spec.migrations_dir)
        )
        print(
            f"{spec.name}: {len(applied)} migrations applied" + "".join(f"\n  {a}" for a in applied)
        )
        return 0
    if args.command == "outbox":
        return asyncio.run(_outbox(spec, settings, args.action, args.since))
    if args.command == "dead-letters":
        try:
            return asyncio.run(_dead_letters(spec, settings, args.group, args.replay, args.limit))
        except KafkaError as exc:
            print(
                f"{spec.name}: cannot reach Kafka at {settings.kafka_bootstrap_servers}"
                f" ({type(exc).__name__}); set KAFKA_BOOTSTRAP_SERVERS to the cluster's broker",
                file=sys.stderr,
            )
            return 1
    roles = ROLES if args.command == "run" else (args.command,)
    asyncio.run(_run_until_signal(ServiceRuntime(spec, settings, roles=roles)))
    return 0
