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
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from kafka.errors import KafkaError
from psycopg.types.json import Jsonb

from cqcommon.asyncutil import sleep_or_stop
from cqcommon.db import Conn, Database
from cqcommon.events import EVENT_TYPES, topic_name
from cqcommon.telemetry import inject_carrier

log = logging.getLogger(__name__)


async def append_to_outbox(conn: Conn, envelope: EventEnvelope) -> None:
    """Insert ``envelope`` into this schema's outbox inside the caller's transaction."""
    etype = EVENT_TYPES[envelope.event_type]
    await conn.execute(
        "INSERT INTO outbox (event_id, event_type, topic, message_key, envelope, headers)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            envelope.event_id,
            envelope.event_type,
            etype.topic,
            envelope.aggregate_id,
            envelope.SerializeToString(),
            Jsonb(inject_carrier()),
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
    idle_sleep_s: float = 0.1
    send_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0


def backoff_delay(attempts: int, config: RelayConfig) -> float:
    """Delay before the next try after ``attempts`` failures (capped exponential)."""
    return float(min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1)))


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
        self._lock_key = f"outbox-relay:{db.schema}"
        self.published_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                sent = await self.publish_batch()
                failures = 0
            except Exception:  # keep relaying whatever went wrong; rows stay pending
                failures += 1
                log.exception("outbox relay batch failed (%s)", self.db.schema)
                await self._drop_producer()
                sent = 0
                await sleep_or_stop(stop, backoff_delay(failures, self.config))
                continue
            if sent == 0:
                await sleep_or_stop(stop, self.config.idle_sleep_s)
        await self._drop_producer()

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
                results = await asyncio.to_thread(self._send_all, producer, rows)
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
        futures = []
        for _id, event_id, event_type, topic, key, envelope, headers, _attempts in rows:
            carrier = headers if isinstance(headers, dict) else json.loads(headers or "{}")
            kafka_headers = [
                ("event_id", str(event_id).encode()),
                ("event_type", str(event_type).encode()),
                *[(k, str(v).encode()) for k, v in carrier.items()],
            ]
            futures.append(
                producer.send(
                    topic_name(topic, self.topic_prefix),
                    value=bytes(envelope),
                    key=str(key).encode(),
                    headers=kafka_headers,
                )
            )
        producer.flush(timeout=self.config.send_timeout_s)
        results: list[Exception | None] = []
        for fut in futures:
            try:
                fut.get(timeout=self.config.send_timeout_s)
                results.append(None)
            except Exception as exc:  # each row records its own failure
                results.append(exc)
        return results

    async def _get_producer(self, topics: list[str]) -> Producer:
        if self._producer is None:
            if self.ensure_topics is not None:
                names = sorted({topic_name(t, self.topic_prefix) for t in topics})
                await asyncio.to_thread(self.ensure_topics, names)
            self._producer = await asyncio.to_thread(self.producer_factory)
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.to_thread(producer.close, 2)
            except Exception:  # closing a broken producer must not stop the relay
                log.debug("closing producer failed", exc_info=True)


async def pending_count(db: Database) -> int:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        row = await cur.fetchone()
        return int(row[0]) if row else 0
