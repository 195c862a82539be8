"""Idempotent Kafka consumer: each event is applied in one database transaction together
with its inbox row, so a redelivered event is applied once; offsets are committed only
after the transaction, without waiting for the broker's answer, at most every
``ConsumerConfig.commit_interval_s`` while events keep coming and at once when they stop
(a commit that is lost or not sent yet means a redelivery, which the inbox skips;
stopping commits the last offsets and waits).

Failure handling:
- transient errors (database unreachable, serialization failure, deadlock) are retried
  with backoff for as long as they last — the message is not skipped;
- anything else is retried a few times, then the message goes to the group's
  dead-letter topic with its error, and the consumer moves on;
- a commit during a rebalance (``RebalanceInProgressError``/``CommitFailedError``) is
  ignored: the events are redelivered and the inbox skips them.

Throughput: the partitions a poll returns are applied side by side (what two members of
the group would do; order is per partition), and each partition's records in order in one
transaction (one durable commit for the batch instead of one per event: a commit waits
for the disk, and a consumer that commits every event cannot keep up with a few hundred
events a second on ordinary storage). If anything in the batch fails, the transaction is
rolled back as a whole and the batch's records take the one-at-a-time path above
(retries, dead letter) in order; a record that cannot be decoded ends the batch before
it. Order within a partition is kept either way; the price of a failure is redoing its
batch, and no savepoints are paid for in the common case.

Set-based writes: a batch's inbox rows go in with one statement, and a
:class:`BatchHandler` gets each run of consecutive events of its type at once, so that it
can write them with a statement per table instead of one per event. At a few hundred
events a second the per-statement round trips, not the work, were what kept a consumer
behind (bench/event_lag.py: about 5 ms of wall time per event, three statements each, on
a busy machine).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from google.protobuf.message import DecodeError, Message
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from opentelemetry import context as otel_context
from opentelemetry import trace

from cqcommon.asyncutil import OwnThread, sleep_or_stop
from cqcommon.db import Conn, Database
from cqcommon.events import topic_name, unpack
from cqcommon.kafka import headers_to_carrier
from cqcommon.metrics import CONSUMER_EVENTS
from cqcommon.telemetry import extract_context, tracing_active

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
    _before_commit: list[AfterCommit] = field(default_factory=list, repr=False, compare=False)

    def after_commit(self, action: AfterCommit) -> None:
        """Run ``action`` after this event's transaction commits (best effort: logged)."""
        self._after_commit.append(action)

    def before_commit(self, action: AfterCommit) -> None:
        """Run ``action`` inside this event's transaction, after every handler of it (and of
        the rest of its batch) ran, just before the commit; its failure rolls the
        transaction back like a handler's. The actions of a batch run side by side, so
        ones that talk to the same server can share a round trip."""
        self._before_commit.append(action)


Handler = Callable[[Conn, ReceivedEvent], Awaitable[None]]


@dataclass(frozen=True)
class BatchHandler:
    """A handler that applies a run of consecutive events of its type in one go.

    It is also a plain :data:`Handler` (one event is a run of one), which the
    one-at-a-time path uses. ``apply_many`` must leave the same state as applying the
    events one by one in their order, and registers each event's own before- and
    after-commit actions.
    """

    apply_many: Callable[[Conn, Sequence[ReceivedEvent]], Awaitable[None]]

    async def __call__(self, conn: Conn, event: ReceivedEvent) -> None:
        await self.apply_many(conn, [event])


class TransientError(Exception):
    """Raise from a handler to ask for a retry (e.g. a peer is briefly unavailable)."""


_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    TransientError,
    TimeoutError,
)


async def _before_commit(events: Sequence[ReceivedEvent]) -> None:
    """The events' before-commit actions, side by side; the first failure is raised (and
    rolls their transaction back)."""
    actions = [action() for event in events for action in event._before_commit]
    if actions:
        await asyncio.gather(*actions)


def _span_name(envelope: EventEnvelope) -> str:
    return f"consume {envelope.event_type.rsplit('.', 1)[-1]}"


async def _quiet(task: asyncio.Task[Any] | None) -> None:
    """Wait until ``task`` (a poll in its thread) is over, whatever its outcome; a failure
    is left on the task for whoever awaits it (or logged, if nobody will)."""
    if task is None:
        return
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.debug("a poll ahead failed", exc_info=task.exception())


def _runs(
    items: Sequence[tuple[Handler, ReceivedEvent, Record]],
) -> list[tuple[Handler, list[tuple[ReceivedEvent, Record]]]]:
    """The events in order, as runs for their handlers: consecutive events of one
    :class:`BatchHandler` form one run, any other handler gets runs of one."""
    runs: list[tuple[Handler, list[tuple[ReceivedEvent, Record]]]] = []
    for handler, event, record in items:
        if runs and isinstance(handler, BatchHandler) and runs[-1][0] is handler:
            runs[-1][1].append((event, record))
        else:
            runs.append((handler, [(event, record)]))
    return runs


@dataclass(frozen=True)
class ConsumerConfig:
    poll_timeout_ms: int = 500
    #: offsets go to the broker at most this often while events keep coming (and at once
    #: when a poll finds nothing, and on stopping): a commit per poll cost the consumer
    #: and the broker about 0.9 CPU ms per event at 100 events/s (bench/plumbing_floor.py);
    #: what a crash leaves uncommitted comes again and the inbox skips it
    commit_interval_s: float = 0.5
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


def _decode(record: Record) -> tuple[EventEnvelope, Message] | None:
    """The record's envelope and payload, or None when it is not a known event."""
    try:
        envelope = EventEnvelope()
        envelope.ParseFromString(record.value or b"")
        return envelope, unpack(envelope)
    except (DecodeError, ValueError):
        return None


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
    #: offsets committed without waiting since the last settle (``_commit_soon``)
    _unsettled: dict[Any, OffsetAndMetadata] = field(default_factory=dict, repr=False)
    #: applied offsets not sent yet (``commit_interval_s``) and when offsets last went out
    _pending: dict[Any, OffsetAndMetadata] = field(default_factory=dict, repr=False)
    _last_commit_at: float = field(default=float("-inf"), repr=False)
    #: the one thread every call of the KafkaConsumer runs on (``asyncutil.OwnThread``)
    _thread: OwnThread = field(
        default_factory=lambda: OwnThread("kafka-consumer"), init=False, repr=False
    )
    #: dead-letter sends (a producer made, a send awaited up to 10 s, closed) run here, not
    #: on the default executor, which every ``asyncio.to_thread`` of the process shares
    _dead_letter_thread: OwnThread = field(
        default_factory=lambda: OwnThread("kafka-dead-letter"), init=False, repr=False
    )

    @property
    def dlq_topic(self) -> str:
        return topic_name(f"{self.group_id}.dlq", self.topic_prefix)

    async def run(self, stop: asyncio.Event) -> None:
        consumer: Any = None
        failures = 0
        #: the next poll, in its thread while a batch is applied (see below)
        ahead: asyncio.Task[Any] | None = None
        try:
            while not stop.is_set():
                try:
                    if consumer is None:
                        consumer = await self._thread.run(self._connect)
                    records = await (ahead or self._poll(consumer))
                    ahead = None
                    done: dict[Any, OffsetAndMetadata] = {}
                    # partitions side by side (as two members of the group would), each in order
                    polled = list(records.items())
                    if not polled and self._pending:
                        self._send_pending(consumer)  # quiet now: the offsets go out at once
                    if polled:
                        # the next poll goes out while this batch is applied, so the records
                        # that came meanwhile are there when it is done (a round trip less per
                        # cycle on every event's path). Order holds: a partition's next records
                        # are applied after this batch. A rebalance in that poll can hand a
                        # partition over mid-batch; its new owner re-reads from the committed
                        # offset and the inbox skips what this batch applied
                        ahead = asyncio.create_task(self._poll(consumer))
                    outcomes = await asyncio.gather(
                        *(self._process_partition(batch, stop) for _tp, batch in polled),
                        return_exceptions=True,  # every partition finishes before we go on
                    )
                    for (tp, batch), n in zip(polled, outcomes, strict=True):
                        if isinstance(n, int) and n:  # stopping mid-retry leaves the rest
                            done[tp] = OffsetAndMetadata(batch[n - 1].offset + 1, "", -1)
                    # a KafkaConsumer is not thread-safe: nothing else touches it while a poll
                    # runs, so the commit waits for the poll ahead to return
                    await _quiet(ahead)
                    failed = [e for e in outcomes if isinstance(e, BaseException)]
                    if failed:
                        ahead = None  # its records are not applied: they come again
                        if done or self._pending:  # what was applied need not come again
                            await self._commit(consumer, {**self._pending, **done})
                            self._pending.clear()
                        raise failed[0]
                    if done:
                        self._commit_soon(consumer, done)
                    failures = 0
                except Exception:
                    # the broker went away, or something escaped a batch that the batch and
                    # the one-at-a-time path do not catch (a dead-letter send failing with
                    # another error, a bug): either way this connection is dropped and the
                    # group rejoined after a backoff. The partitions are read again from the
                    # last committed offsets and the inbox skips what was applied; a run()
                    # that died instead left a process serving gRPC and consuming nothing
                    failures += 1
                    log.exception("consumer %s failed; reconnecting", self.group_id)
                    await _quiet(ahead)
                    ahead = None
                    self._unsettled.clear()  # redelivery, deduped by the inbox, covers them
                    self._pending.clear()
                    await self._close(consumer)
                    consumer = None
                    await sleep_or_stop(stop, min(10.0, 0.5 * 2**failures))
        finally:
            # whatever ends the loop: stopping, a cancellation, an error. Closing leaves
            # the group at once; a consumer object left behind would keep heartbeating
            # from its own thread and hold its partitions from the next one
            await _quiet(ahead)  # what it read is not applied, and comes again
            await self._settle(consumer)
            await self._close(consumer)
            self._thread.close()  # idle now: nothing is left to run on it
            self._dead_letter_thread.close()

    async def _poll(self, consumer: Any) -> Any:
        return await self._thread.run(consumer.poll, self.config.poll_timeout_ms)

    def _connect(self) -> Any:
        names = [topic_name(t, self.topic_prefix) for t in self.topics]
        if self.ensure_topics is not None:
            self.ensure_topics([*names, self.dlq_topic])
        consumer = self.consumer_factory()
        consumer.subscribe(names)
        return consumer

    def _commit_soon(self, consumer: Any, offsets: dict[Any, OffsetAndMetadata]) -> None:
        """Commit ``offsets`` without waiting for the broker, so the next poll goes out at
        once (a round trip less per poll on the path of every event). A commit that never
        lands (a crash, a rebalance) only means those events come again, and the inbox
        skips them; stopping commits the last offsets and waits (``_settle``)."""
        self._unsettled.update(offsets)
        self._pending.update(offsets)
        if time.monotonic() - self._last_commit_at >= self.config.commit_interval_s:
            self._send_pending(consumer)

    def _send_pending(self, consumer: Any) -> None:
        """The applied offsets not sent yet, without waiting (never while a poll runs: the
        callers hold no poll ahead). Only the partitions still ours: a partition a
        rebalance handed over meanwhile is its new owner's to commit."""
        owned = consumer.assignment()
        offsets = {tp: o for tp, o in self._pending.items() if tp in owned}
        if offsets:
            consumer.commit_async(offsets, callback=self._commit_done)
        self._pending.clear()
        self._last_commit_at = time.monotonic()

    def _commit_done(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            log.info("consumer %s: offset commit failed (%r)", self.group_id, response)

    async def _settle(self, consumer: Any) -> None:
        """On stopping: commit the last offsets of the partitions still ours, and wait."""
        self._pending.clear()  # the settle below commits them (they are in _unsettled)
        if consumer is None or not self._unsettled:
            return
        try:
            owned = consumer.assignment()
            offsets = {tp: o for tp, o in self._unsettled.items() if tp in owned}
            if offsets:
                await self._thread.run(consumer.commit, offsets, 5000)
        except (KafkaError, OSError):
            log.info("consumer %s: last offsets not committed", self.group_id, exc_info=True)
        finally:
            self._unsettled.clear()

    async def _commit(self, consumer: Any, offsets: dict[Any, OffsetAndMetadata]) -> None:
        # explicit offsets: only what was applied, never the rest of a polled batch
        try:
            await self._thread.run(consumer.commit, offsets)
        except (RebalanceInProgressError, CommitFailedError):
            # the partitions moved; whoever gets them re-reads and the inbox dedupes
            log.info("consumer %s: commit skipped during rebalance", self.group_id)

    async def process(self, record: Record, stop: asyncio.Event) -> bool:
        """Apply (or dead-letter) one record; False if abandoned because we are stopping.
        Public for the dead-letter replay, which feeds records back one by one."""
        return await self._process(record, stop)

    async def _process_partition(self, records: Sequence[Record], stop: asyncio.Event) -> int:
        """Apply one partition's polled records in order, in batches; returns how many are
        done (applied, skipped or dead-lettered) from the first on."""
        done = 0
        while done < len(records):
            batched, ok = await self._apply_batch(records[done:])
            if ok:
                done += batched
                if done == len(records):
                    break
                batched = 0  # records[done] cannot be decoded: the single path dead-letters it
            # the batch failed (nothing of it was committed) or could not start: its records
            # one at a time, with retries and the dead letter, then batches again
            for record in records[done : done + max(1, batched)]:
                if not await self._process(record, stop):
                    return done
                done += 1
        return done

    async def _apply_batch(self, records: Sequence[Record]) -> tuple[int, bool]:
        """Apply the records up to the first undecodable one in one transaction; returns
        how many that is and whether they were committed (all of them, or none)."""
        prefix: list[tuple[Handler | None, ReceivedEvent, Record]] = []
        for record in records:
            decoded = _decode(record)
            if decoded is None:
                break  # undecodable: dead-lettered by _process
            envelope, payload = decoded
            event = ReceivedEvent(envelope, payload, record.topic, record.partition, record.offset)
            prefix.append((self.handlers.get(envelope.event_type), event, record))
        if not prefix:
            return 0, True
        wanted: list[tuple[Handler, ReceivedEvent, Record]] = []
        for handler, event, record in prefix:
            if handler is not None:  # else an event type this consumer does not need
                wanted.append((handler, event, record))
        try:
            async with self.db.transaction() as conn:
                fresh = await self._claim(conn, [event for _h, event, _r in wanted])
                claimed = {id(event) for event in fresh}
                runs = _runs([item for item in wanted if id(item[1]) in claimed])
                for handler, run in runs:
                    with self._spans(run):
                        if isinstance(handler, BatchHandler):
                            await handler.apply_many(conn, [event for event, _r in run])
                        else:
                            await handler(conn, run[0][0])
                await _before_commit(fresh)
        except Exception:  # rolled back as a whole: the single path finds the culprit
            log.info("consumer %s: batch rolled back, one at a time", self.group_id, exc_info=True)
            return len(prefix), False
        duplicates = len(wanted) - len(fresh)
        self.duplicates_total += duplicates
        self.applied_total += len(fresh)
        if duplicates:
            CONSUMER_EVENTS.labels(self.group_id, "duplicate").inc(duplicates)
        if fresh:
            CONSUMER_EVENTS.labels(self.group_id, "applied").inc(len(fresh))
        # side by side: each is independent of the others (and logs its own failure)
        await asyncio.gather(*(self._after_commit(event) for event in fresh))
        return len(prefix), True

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
        with self._span(envelope, record):
            return await self._apply_with_retries(handler, event, record, stop)

    @contextmanager
    def _spans(self, run: Sequence[tuple[ReceivedEvent, Record]]) -> Iterator[None]:
        """Each event's consumer span around the run that applies it (one event: as
        :meth:`_span`; several: each span a child of its own producer span, open while
        the run is applied; none when no exporter takes spans, ``tracing_active``)."""
        if not tracing_active():
            yield
            return
        if len(run) == 1:
            with self._span(run[0][0].envelope, run[0][1]):
                yield
            return
        spans = [
            tracer.start_span(
                _span_name(event.envelope),
                context=extract_context(headers_to_carrier(record.headers)),
                kind=trace.SpanKind.CONSUMER,
                attributes=self._span_attributes(event.envelope, record),
            )
            for event, record in run
        ]
        try:
            yield
        finally:
            for span in spans:
                span.end()

    def _span_attributes(self, envelope: EventEnvelope, record: Record) -> dict[str, str]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": self.group_id,
            "messaging.message.id": envelope.event_id,
        }

    @contextmanager
    def _span(self, envelope: EventEnvelope, record: Record) -> Iterator[None]:
        """The event's consumer span, a child of the producer span in its headers (none
        when no exporter takes spans)."""
        if not tracing_active():
            yield
            return
        token = otel_context.attach(extract_context(headers_to_carrier(record.headers)))
        try:
            with tracer.start_as_current_span(
                _span_name(envelope),
                kind=trace.SpanKind.CONSUMER,
                attributes=self._span_attributes(envelope, record),
            ):
                yield
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
        async with self.db.transaction() as conn:
            applied = await self._apply_in(conn, handler, event)
            if applied:
                await _before_commit([event])
        if not applied:
            self.duplicates_total += 1
            CONSUMER_EVENTS.labels(self.group_id, "duplicate").inc()
            return
        self.applied_total += 1
        CONSUMER_EVENTS.labels(self.group_id, "applied").inc()
        await self._after_commit(event)

    async def _apply_in(self, conn: Conn, handler: Handler, event: ReceivedEvent) -> bool:
        """Record the event in the inbox and apply it in ``conn``'s transaction; False
        (and nothing applied) when the inbox already has it."""
        if not await self._claim(conn, [event]):
            return False  # applied before: a redelivery changes nothing
        await handler(conn, event)
        return True

    async def _claim(self, conn: Conn, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        """Record ``events`` in the inbox with one statement, in ``conn``'s transaction; the
        ones not recorded before (each id once: a later copy of an id in ``events`` is a
        duplicate, as it would be one at a time), in their order, with their actions
        cleared for this attempt."""
        first: dict[str, ReceivedEvent] = {}
        for event in events:
            first.setdefault(event.envelope.event_id, event)
        if not first:
            return []
        batch = list(first.values())
        cur = await conn.execute(
            "INSERT INTO inbox (consumer_group, event_id, event_type, topic,"
            " kafka_partition, kafka_offset)"
            " SELECT %s, * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::int[],"
            " %s::bigint[])"
            " ON CONFLICT DO NOTHING RETURNING event_id::text",
            (
                self.group_id,
                [e.envelope.event_id for e in batch],
                [e.envelope.event_type for e in batch],
                [e.topic for e in batch],
                [e.partition for e in batch],
                [e.offset for e in batch],
            ),
        )
        claimed = {row[0] for row in await cur.fetchall()}
        fresh = [e for e in batch if e.envelope.event_id in claimed]
        for event in fresh:
            event._after_commit.clear()  # a retried attempt registers its own
            event._before_commit.clear()
        return fresh

    async def _after_commit(self, event: ReceivedEvent) -> None:
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

        await self._dead_letter_thread.run(send)
        self.dead_lettered_total += 1
        CONSUMER_EVENTS.labels(self.group_id, "dead_lettered").inc()

    async def _close(self, consumer: Any) -> None:
        if consumer is not None:
            try:
                await self._thread.run(consumer.close)
            except Exception:  # a broken consumer may fail to close cleanly
                log.debug("consumer close failed", exc_info=True)
