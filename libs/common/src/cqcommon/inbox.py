"""Idempotent Kafka consumer: each event is applied in one database transaction together
with its inbox row, so a redelivered event is applied once; offsets are committed only
after the transaction.

Failure handling:
- transient errors (database unreachable, serialization failure, deadlock) are retried
  with backoff for as long as they last — the message is not skipped;
- anything else is retried a few times, then the message goes to the group's
  dead-letter topic with its error, and the consumer moves on;
- a commit during a rebalance (``RebalanceInProgressError``/``CommitFailedError``) is
  ignored: the events are redelivered and the inbox skips them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from google.protobuf.message import DecodeError, Message
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from opentelemetry import context as otel_context
from opentelemetry import trace

from cqcommon.asyncutil import sleep_or_stop
from cqcommon.db import Conn, Database
from cqcommon.events import topic_name, unpack
from cqcommon.kafka import headers_to_carrier
from cqcommon.metrics import CONSUMER_EVENTS
from cqcommon.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cqcommon.inbox")


AfterCommit = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReceivedEvent:
    """An event as a handler sees it: the envelope and its unpacked payload.

    A handler that must act once its writes are visible (e.g. invalidate a cache, so
    that no reader can re-cache the old rows) registers that with ``after_commit``.
    """

    envelope: EventEnvelope
    payload: Message
    topic: str
    partition: int
    offset: int
    _after_commit: list[AfterCommit] = field(default_factory=list, repr=False, compare=False)

    def after_commit(self, action: AfterCommit) -> None:
        """Run ``action`` after this event's transaction commits (best effort: logged)."""
        self._after_commit.append(action)


Handler = Callable[[Conn, ReceivedEvent], Awaitable[None]]


class TransientError(Exception):
    """Raise from a handler to ask for a retry (e.g. a peer is briefly unavailable)."""


_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    TransientError,
    TimeoutError,
)


@dataclass(frozen=True)
class ConsumerConfig:
    poll_timeout_ms: int = 500
    max_attempts: int = 3
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass
class EventConsumer:
    """Consumes ``topics`` as group ``group_id``, dispatching by event type to ``handlers``."""

    db: Database
    group_id: str
    topics: list[str]
    handlers: Mapping[str, Handler]
    consumer_factory: Callable[[], Any]
    producer_factory: Callable[[], Any]
    topic_prefix: str = ""
    ensure_topics: Callable[[list[str]], None] | None = None
    config: ConsumerConfig = field(default_factory=ConsumerConfig)
    applied_total: int = 0
    duplicates_total: int = 0
    dead_lettered_total: int = 0

    @property
    def dlq_topic(self) -> str:
        return topic_name(f"{self.group_id}.dlq", self.topic_prefix)

    async def run(self, stop: asyncio.Event) -> None:
        consumer: Any = None
        failures = 0
        while not stop.is_set():
            try:
                if consumer is None:
                    consumer = await asyncio.to_thread(self._connect)
                records = await asyncio.to_thread(consumer.poll, self.config.poll_timeout_ms)
                done: dict[Any, OffsetAndMetadata] = {}
                for tp, batch in records.items():
                    for record in batch:
                        if not await self._process(record, stop):
                            break  # stopping mid-retry: leave this offset uncommitted
                        done[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
                    if stop.is_set():
                        break
                if done:
                    await self._commit(consumer, done)
                failures = 0
            except (KafkaError, OSError):
                failures += 1
                log.exception("consumer %s lost the broker; reconnecting", self.group_id)
                await self._close(consumer)
                consumer = None
                await sleep_or_stop(stop, min(10.0, 0.5 * 2**failures))
        await self._close(consumer)

    def _connect(self) -> Any:
        names = [topic_name(t, self.topic_prefix) for t in self.topics]
        if self.ensure_topics is not None:
            self.ensure_topics([*names, self.dlq_topic])
        consumer = self.consumer_factory()
        consumer.subscribe(names)
        return consumer

    async def _commit(self, consumer: Any, offsets: dict[Any, OffsetAndMetadata]) -> None:
        # explicit offsets: only what was applied, never the rest of a polled batch
        try:
            await asyncio.to_thread(consumer.commit, offsets)
        except (RebalanceInProgressError, CommitFailedError):
            # the partitions moved; whoever gets them re-reads and the inbox dedupes
            log.info("consumer %s: commit skipped during rebalance", self.group_id)

    async def process(self, record: Record, stop: asyncio.Event) -> bool:
        """Apply (or dead-letter) one record; False if abandoned because we are stopping.
        Public for the dead-letter replay, which feeds records back one by one."""
        return await self._process(record, stop)

    async def _process(self, record: Record, stop: asyncio.Event) -> bool:
        """Apply (or dead-letter) one record; False if abandoned because we are stopping."""
        try:
            envelope = EventEnvelope()
            envelope.ParseFromString(record.value or b"")
            payload = unpack(envelope)
        except (DecodeError, ValueError) as exc:
            await self._dead_letter(record, exc)
            return True
        handler = self.handlers.get(envelope.event_type)
        if handler is None:
            return True  # an event type this consumer does not need
        event = ReceivedEvent(envelope, payload, record.topic, record.partition, record.offset)
        ctx = extract_context(headers_to_carrier(record.headers))
        token = otel_context.attach(ctx)
        try:
            with tracer.start_as_current_span(
                f"consume {envelope.event_type.rsplit('.', 1)[-1]}",
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": record.topic,
                    "messaging.consumer.group.name": self.group_id,
                    "messaging.message.id": envelope.event_id,
                },
            ):
                return await self._apply_with_retries(handler, event, record, stop)
        finally:
            otel_context.detach(token)

    async def _apply_with_retries(
        self, handler: Handler, event: ReceivedEvent, record: Record, stop: asyncio.Event
    ) -> bool:
        attempts = 0
        transient = 0
        while True:
            try:
                await self._apply(handler, event)
                return True
            except _TRANSIENT as exc:
                transient += 1
                delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2**transient)
                log.warning("consumer %s: transient error (%r), retrying", self.group_id, exc)
                if stop.is_set():
                    return False
                await sleep_or_stop(stop, delay)
            except Exception as exc:
                attempts += 1
                if attempts >= self.config.max_attempts:
                    log.exception(
                        "consumer %s: poison event %s", self.group_id, event.envelope.event_id
                    )
                    await self._dead_letter(record, exc)
                    return True
                await sleep_or_stop(stop, self.config.backoff_base_s * attempts)

    async def _apply(self, handler: Handler, event: ReceivedEvent) -> None:
        event._after_commit.clear()  # a retried attempt registers its own
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO inbox (consumer_group, event_id, event_type, topic,"
                " kafka_partition, kafka_offset) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (
                    self.group_id,
                    event.envelope.event_id,
                    event.envelope.event_type,
                    event.topic,
                    event.partition,
                    event.offset,
                ),
            )
            if cur.rowcount == 0:
                self.duplicates_total += 1
                CONSUMER_EVENTS.labels(self.group_id, "duplicate").inc()
                return  # applied before: a redelivery changes nothing
            await handler(conn, event)
        self.applied_total += 1
        CONSUMER_EVENTS.labels(self.group_id, "applied").inc()
        for action in event._after_commit:
            try:
                await action()
            except Exception:
                log.exception(
                    "consumer %s: after-commit action of %s failed",
                    self.group_id,
                    event.envelope.event_id,
                )

    async def _dead_letter(self, record: Record, exc: BaseException) -> None:
        headers = [(k, v) for k, v in record.headers or () if v is not None]
        headers += [
            ("dlq_error", repr(exc)[:4000].encode()),
            ("dlq_group", self.group_id.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
        ]

        def send() -> None:
            producer = self.producer_factory()
            try:
                producer.send(
                    self.dlq_topic, value=record.value, key=record.key, headers=headers
                ).get(timeout=10)
            finally:
                producer.close(2)

        await asyncio.to_thread(send)
        self.dead_lettered_total += 1
        CONSUMER_EVENTS.labels(self.group_id, "dead_lettered").inc()

    async def _close(self, consumer: Any) -> None:
        if consumer is not None:
            try:
                await asyncio.to_thread(consumer.close)
            except Exception:  # a broken consumer may fail to close cleanly
                log.debug("consumer close failed", exc_info=True)
