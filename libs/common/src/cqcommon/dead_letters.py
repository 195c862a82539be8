"""Dead-letter topics: list what a consumer group set aside, and replay it once the cause
is fixed.

A consumer that cannot apply an event after its retries sends the record, unchanged, to
``<group>.dlq`` with headers saying why and where it came from (``cqcommon.inbox``).
Replaying feeds those records back through the same group's handlers and inbox, under
their original topic, partition and offset:

- an event applied before (by an earlier replay, or redelivered and applied after a fix)
  changes nothing, because the inbox row is keyed by group and event id;
- an event that fails again is dead-lettered again, with a clean set of ``dlq_*`` headers.
  It lands after the end offsets the replay took at its start, so a run always ends;
- progress is the committed offsets of the group ``<group>.dlq-replay``, so the next run
  continues after the last record this one finished, and a crash re-reads at most the
  record in hand (which the inbox then skips).

Operators use it through ``python -m cq<service> dead-letters`` (``cqcommon.runner``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from google.protobuf.message import DecodeError
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from cqcommon.events import topic_name
from cqcommon.inbox import EventConsumer
from cqcommon.kafka import header_value, make_consumer
from cqcommon.settings import Settings

#: The headers the inbox adds when it dead-letters a record.
DLQ_HEADERS = ("dlq_error", "dlq_group", "dlq_topic", "dlq_partition", "dlq_offset")
#: How long one poll of the dead-letter topic waits for records before giving up (ms).
POLL_TIMEOUT_MS = 2000


def replay_group_id(group: str) -> str:
    """The consumer group whose committed offsets record how far replays of ``group`` got."""
    return f"{group}.dlq-replay"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, as an operator needs to judge it."""

    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    source: str
    error: str


@dataclass
class OriginalRecord:
    """A dead-lettered record put back at its source coordinates, without the ``dlq_*``
    headers (satisfies ``cqcommon.inbox.Record``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass
class ReplayReport:
    """What one replay run did."""

    read: int = 0
    replayed: list[DeadLetter] = field(default_factory=list)
    stopped_early: bool = False


def describe(record: Any) -> DeadLetter:
    """The operator's view of one dead-letter record (event id and type when it decodes)."""
    event_id: str | None = None
    event_type: str | None = None
    try:
        envelope = EventEnvelope()
        envelope.ParseFromString(record.value or b"")
        event_id = envelope.event_id or None
        event_type = envelope.event_type or None
    except DecodeError:
        pass  # the record was dead-lettered because it does not decode
    headers = record.headers
    source = (
        f"{header_value(headers, 'dlq_topic')}/{header_value(headers, 'dlq_partition')}"
        f"@{header_value(headers, 'dlq_offset')}"
    )
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        event_id=event_id,
        event_type=event_type,
        source=source,
        error=header_value(headers, "dlq_error") or "",
    )


def original_record(record: Any) -> OriginalRecord:
    """The record as the consumer first saw it: source topic, partition and offset from the
    ``dlq_*`` headers (the dead-letter coordinates when a header is missing)."""
    headers = record.headers or []
    partition = header_value(headers, "dlq_partition")
    offset = header_value(headers, "dlq_offset")
    return OriginalRecord(
        topic=header_value(headers, "dlq_topic") or record.topic,
        partition=int(partition) if partition is not None else record.partition,
        offset=int(offset) if offset is not None else record.offset,
        key=record.key,
        value=record.value,
        headers=[(k, v) for k, v in headers if k not in DLQ_HEADERS],
    )


class DeadLetterReader:
    """Reads one group's dead-letter topic from where the last replay stopped up to the end
    offsets taken when it opened (blocking kafka-python: call through ``asyncio.to_thread``)."""

    def __init__(self, settings: Settings, group: str, *, from_beginning: bool = False) -> None:
        self.topic = topic_name(f"{group}.dlq", settings.kafka_topic_prefix)
        self._consumer: KafkaConsumer = make_consumer(
            settings,
            group_id=settings.kafka_topic_prefix + replay_group_id(group),
            client_id=f"{group}-dlq-replay",
        )
        partitions = self._consumer.partitions_for_topic(self.topic) or set()
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._end: dict[TopicPartition, int] = {}
        if not self._partitions:
            return  # the topic was never created: nothing was ever dead-lettered
        self._consumer.assign(self._partitions)
        self._end = dict(self._consumer.end_offsets(self._partitions))
        for tp in self._partitions:
            committed = None if from_beginning else self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    def _remaining(self) -> list[TopicPartition]:
        return [tp for tp in self._partitions if self._consumer.position(tp) < self._end[tp]]

    def read(self, limit: int | None = None) -> list[Any]:
        """The records up to the end snapshot (at most ``limit``), in offset order per
        partition. Stops early when the broker has nothing more to give in one poll."""
        out: list[Any] = []
        while self._remaining() and (limit is None or len(out) < limit):
            batches = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            if not batches:
                break
            for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                for record in records:
                    if record.offset < self._end.get(tp, 0):
                        out.append(record)
        out.sort(key=lambda r: (r.partition, r.offset))
        if limit is not None and len(out) > limit:
            # keep a prefix of each partition, so committed progress never skips a record
            out = out[:limit]
        return out

    def commit(self, record: Any) -> None:
        tp = TopicPartition(self.topic, record.partition)
        self._consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})

    def close(self) -> None:
        self._consumer.close()


async def list_dead_letters(
    settings: Settings, group: str, *, limit: int | None = None
) -> list[DeadLetter]:
    """What a replay of ``group`` would read next (from the beginning if never replayed)."""
    reader = await asyncio.to_thread(DeadLetterReader, settings, group)
    try:
        records: Sequence[Any] = await asyncio.to_thread(reader.read, limit)
        return [describe(r) for r in records]
    finally:
        await asyncio.to_thread(reader.close)


async def replay_dead_letters(
    consumer: EventConsumer,
    settings: Settings,
    *,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayReport:
    """Apply ``consumer.group_id``'s dead letters through ``consumer`` (its handlers and
    inbox), committing replay progress after each record."""
    stop = stop or asyncio.Event()
    report = ReplayReport()
    reader = await asyncio.to_thread(DeadLetterReader, settings, consumer.group_id)
    try:
        records = await asyncio.to_thread(reader.read, limit)
        report.read = len(records)
        for record in records:
            if not await consumer.process(original_record(record), stop):
                report.stopped_early = True  # stopping mid-retry: this record stays due
                break
            await asyncio.to_thread(reader.commit, record)
            report.replayed.append(describe(record))
    finally:
        await asyncio.to_thread(reader.close)
    return report
