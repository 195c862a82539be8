"""Transactional outbox: ``append_to_outbox`` writes an event in the caller's
transaction; ``OutboxRelay`` publishes pending rows to Kafka and marks them sent.

Guarantees:
- an event exists iff its transaction committed (a rollback publishes nothing);
- while the broker is down rows wait and are retried with capped exponential backoff;
- several relays of one service never publish the same row concurrently: a relay works
  only while it holds the schema's transaction-level advisory lock, and rows are also
  locked ``FOR UPDATE SKIP LOCKED`` — one relay at a time also keeps per-key order;
- delivery is at least once (a crash after send and before the mark re-sends), which the
  consumers' inbox turns into exactly-once effects.

Waking: a writer whose commit wrote events notifies the schema's channel right after the
commit (``cqcommon.outbox_notify``: coalesced, from a connection of its own, so commits
never queue on PostgreSQL's notification lock). The relay keeps one dedicated ``LISTEN``
connection (``OutboxListener``) and drains the outbox as soon as a notification arrives,
so an event leaves within milliseconds of its commit. A burst of notifications sets one
flag, which one drain clears. Polling stays as the fallback: an idle relay still looks
every ``poll_interval_s`` (rows written by other means, rows whose backoff ended, a lost
notification), and when the LISTEN connection breaks the relay keeps polling while the
listener reconnects with backoff. ``listen=False`` (``OUTBOX_LISTEN=false``) is polling
only, and writers then send no notifications.

History: migrations ``0002``/``0003`` notified from an insert trigger, inside the writing
transaction; ``0004`` drops it, because a notifying transaction holds the notification
lock through its commit's disk flush, so every event-writing commit of the database
would have waited for the one before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from kafka.errors import KafkaError
from opentelemetry import trace
from psycopg import sql
from psycopg.types.json import Jsonb

from cqcommon.asyncutil import OwnThread, sleep_or_stop, wait_or_stop
from cqcommon.db import Conn, Database
from cqcommon.events import EVENT_TYPES, topic_name
from cqcommon.outbox_notify import notify_channel
from cqcommon.telemetry import extract_context, inject_carrier, tracing_active

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cqcommon.outbox")


async def append_to_outbox(conn: Conn, envelope: EventEnvelope) -> None:
    """Insert ``envelope`` into this schema's outbox inside the caller's transaction."""
    await append_all_to_outbox(conn, [envelope])


async def append_all_to_outbox(conn: Conn, envelopes: Sequence[EventEnvelope]) -> None:
    """Insert ``envelopes`` into this schema's outbox inside the caller's transaction, in
    their order (the relay publishes by id), in one statement however many there are."""
    if not envelopes:
        return
    # ORDER BY the ordinality: the ids (a sequence) are drawn in the events' order
    await conn.execute(
        "INSERT INTO outbox (event_id, event_type, topic, message_key, envelope, headers)"
        " SELECT e.event_id, e.event_type, e.topic, e.message_key, e.envelope, %s"
        " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::bytea[])"
        " WITH ORDINALITY AS e(event_id, event_type, topic, message_key, envelope, n)"
        " ORDER BY e.n",
        (
            Jsonb(inject_carrier()),
            [e.event_id for e in envelopes],
            [e.event_type for e in envelopes],
            [EVENT_TYPES[e.event_type].topic for e in envelopes],
            [e.aggregate_id for e in envelopes],
            [e.SerializeToString() for e in envelopes],
        ),
    )


class FutureLike(Protocol):
    def get(self, timeout: float | None = None) -> Any: ...


class Producer(Protocol):
    """What the relay needs of a kafka-python ``KafkaProducer``."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> FutureLike: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class RelayConfig:
    batch_size: int = 200
    #: wake on the schema's NOTIFY (OUTBOX_LISTEN); polling alone when False
    listen: bool = True
    #: how often an idle relay looks anyway (OUTBOX_POLL_INTERVAL_S)
    poll_interval_s: float = 1.0
    send_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    #: how often a quiet LISTEN connection is checked with a query: a connection that died
    #: without a word (a dropped network) would otherwise never raise
    listen_check_interval_s: float = 30.0


def backoff_delay(attempts: int, config: RelayConfig) -> float:
    """Delay before the next try after ``attempts`` failures (capped exponential)."""
    return float(min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1)))


class OutboxListener:
    """One dedicated autocommit connection that ``LISTEN``s on a schema's outbox channel
    and calls ``on_notify`` for every notification, and once after each (re)connect (rows
    committed while nobody listened were announced to nobody). A broken connection is
    logged and reconnected with capped exponential backoff; meanwhile the relay polls."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_notify: Callable[[], None],
        *,
        config: RelayConfig,
    ) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.on_notify = on_notify
        self.config = config
        #: the LISTEN connection's server process while connected (tests terminate it)
        self.backend_pid: int | None = None
        self.connects_total = 0
        self.notifications_total = 0

    @property
    def listening(self) -> bool:
        return self.backend_pid is not None

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._listen(stop)
            except (psycopg.Error, OSError) as exc:
                failures += 1
                log.warning(
                    "outbox listener %s lost its connection (%r); polling until it is back",
                    self.channel,
                    exc,
                )
            else:
                failures = 0
            finally:
                self.backend_pid = None
            await sleep_or_stop(stop, backoff_delay(failures, self.config))

    async def _listen(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=5
        ) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backend_pid = conn.info.backend_pid
            self.connects_total += 1
            self.on_notify()
            while not stop.is_set():
                async for _ in conn.notifies(timeout=self.config.listen_check_interval_s):
                    self.notifications_total += 1
                    self.on_notify()
                    if stop.is_set():
                        return
                await conn.execute("SELECT 1")


class OutboxRelay:
    """Publishes one service schema's outbox. Run ``run()`` as a task; stop via the event."""

    def __init__(
        self,
        db: Database,
        producer_factory: Callable[[], Producer],
        *,
        topic_prefix: str = "",
        ensure_topics: Callable[[list[str]], None] | None = None,
        config: RelayConfig | None = None,
    ) -> None:
        self.db = db
        self.producer_factory = producer_factory
        self.topic_prefix = topic_prefix
        self.ensure_topics = ensure_topics
        self.config = config or RelayConfig()
        self._producer: Producer | None = None
        # the producer's blocking calls, off the loop's shared default executor
        self._thread = OwnThread("outbox-relay")
        self._lock_key = f"outbox-relay:{db.schema}"
        self._wake = asyncio.Event()
        self.listener: OutboxListener | None = None
        #: waiting for a notification or the next poll (tests wait for this)
        self.idle = False
        self.published_total = 0

    def wake(self) -> None:
        """Ask for a drain now (the listener calls this on every notification)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        listener_task: asyncio.Task[None] | None = None
        if self.config.listen:
            self.listener = OutboxListener(
                self.db.conninfo, notify_channel(self.db.schema), self.wake, config=self.config
            )
            listener_task = asyncio.create_task(
                self.listener.run(stop), name=f"outbox-listener:{self.db.schema}"
            )
        try:
            await self._relay(stop)
        finally:
            if listener_task is not None:
                listener_task.cancel()
                await asyncio.gather(listener_task, return_exceptions=True)
            await self._drop_producer()
            self._thread.close()

    async def _relay(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            # cleared before the batch's query: a row committed after that query notifies
            # after this point, so its wake-up is never lost (and a burst is one drain)
            self._wake.clear()
            try:
                sent = await self.publish_batch()
                failures = 0
            except Exception:  # keep relaying whatever went wrong; rows stay pending
                failures += 1
                log.exception("outbox relay batch failed (%s)", self.db.schema)
                await self._drop_producer()
                await sleep_or_stop(stop, backoff_delay(failures, self.config))
                continue
            if sent >= self.config.batch_size:
                continue  # a full batch: more are probably waiting
            if sent > 0 and not (self.listener is not None and self.listener.listening):
                continue  # polling: only an empty query says the outbox is drained
            # idle, or listening: every row committed since the query will notify
            self.idle = True
            await wait_or_stop(stop, self._wake, self.config.poll_interval_s)
            self.idle = False

    async def publish_batch(self) -> int:
        """Publish up to one batch of due rows; returns how many were marked sent."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (self._lock_key,)
            )
            row = await cur.fetchone()
            if not row or not row[0]:
                return 0  # another relay of this service is active
            cur = await conn.execute(
                "SELECT id, event_id, event_type, topic, message_key, envelope, headers, attempts"
                " FROM outbox WHERE published_at IS NULL AND next_attempt_at <= now()"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (self.config.batch_size,),
            )
            rows = await cur.fetchall()
            if not rows:
                return 0
            try:
                producer = await self._get_producer([r[3] for r in rows])
                results = await self._thread.run(self._send_all, producer, rows)
            except (KafkaError, OSError) as exc:
                # broker unreachable: nothing was sent; every row backs off
                results = [exc] * len(rows)
                await self._drop_producer()
            sent_ids = [r[0] for r, res in zip(rows, results, strict=True) if res is None]
            if sent_ids:
                await conn.execute(
                    "UPDATE outbox SET published_at = now(), attempts = attempts + 1,"
                    " last_error = NULL WHERE id = ANY(%s)",
                    (sent_ids,),
                )
            for r, res in zip(rows, results, strict=True):
                if res is not None:
                    delay = backoff_delay(r[7] + 1, self.config)
                    await conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
                        " next_attempt_at = now() + %s WHERE id = %s",
                        (repr(res)[:2000], timedelta(seconds=delay), r[0]),
                    )
            if len(sent_ids) < len(rows):
                # a lost topic or broken connection: rebuild the producer (and re-create
                # topics) before the next try
                await self._drop_producer()
                log.warning(
                    "outbox %s: %d of %d events not published, will retry",
                    self.db.schema,
                    len(rows) - len(sent_ids),
                    len(rows),
                )
            self.published_total += len(sent_ids)
            return len(sent_ids)

    def _send_all(self, producer: Producer, rows: list[tuple[Any, ...]]) -> list[Exception | None]:
        spans: list[trace.Span] = []
        try:
            return self._send_traced(producer, rows, spans)
        except BaseException as exc:
            for span in spans:
                if span.is_recording():  # not ended yet: the batch failed as a whole
                    span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                    span.end()
            raise

    def _send_traced(
        self, producer: Producer, rows: list[tuple[Any, ...]], spans: list[trace.Span]
    ) -> list[Exception | None]:
        futures = []
        for _id, event_id, event_type, topic, key, envelope, headers, _attempts in rows:
            carrier = headers if isinstance(headers, dict) else json.loads(headers or "{}")
            full_topic = topic_name(topic, self.topic_prefix)
            span = _publish_span(event_type, carrier, full_topic, event_id)
            spans.append(span)
            if span.is_recording():
                carrier = inject_carrier(trace.set_span_in_context(span))
            kafka_headers = [
                ("event_id", str(event_id).encode()),
                ("event_type", str(event_type).encode()),
                *[(k, str(v).encode()) for k, v in carrier.items()],
            ]
            futures.append(
                producer.send(
                    full_topic, value=bytes(envelope), key=str(key).encode(), headers=kafka_headers
                )
            )
        # flush makes every batch sendable at once: the producer's linger_ms adds no delay
        producer.flush(timeout=self.config.send_timeout_s)
        results: list[Exception | None] = []
        for fut, span in zip(futures, spans, strict=True):
            try:
                fut.get(timeout=self.config.send_timeout_s)
                results.append(None)
            except Exception as exc:  # each row records its own failure
                results.append(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            span.end()
        return results

    async def _get_producer(self, topics: list[str]) -> Producer:
        if self._producer is None:
            if self.ensure_topics is not None:
                names = sorted({topic_name(t, self.topic_prefix) for t in topics})
                await self._thread.run(self.ensure_topics, names)
            self._producer = await self._thread.run(self.producer_factory)
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await self._thread.run(producer.close, 2)
            except Exception:  # closing a broken producer must not stop the relay
                log.debug("closing producer failed", exc_info=True)


def _publish_span(
    event_type: object, carrier: dict[str, Any], full_topic: str, event_id: object
) -> trace.Span:
    """One producer span per event, a child of the request that wrote it; the consumer's
    span continues from this one (its context replaces the stored one). With no exporter
    (``tracing_active``) no span is made, and the stored context goes on as it is."""
    if not tracing_active():
        return trace.INVALID_SPAN
    return tracer.start_span(
        f"publish {str(event_type).rsplit('.', 1)[-1]}",
        context=extract_context({k: str(v) for k, v in carrier.items()}),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": full_topic,
            "messaging.message.id": str(event_id),
        },
    )


async def pending_count(db: Database) -> int:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        row = await cur.fetchone()
        return int(row[0]) if row else 0
