"""The consumer's adaptive fetch wait (``cqcommon.kafka.AdaptiveWaitConsumer``) against a
real broker: a quiet topic is asked with the long wait, records bring the short one back,
and nothing is lost or delayed by the switch beyond the idle wait."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from cqcommon.kafka import ensure_topics, make_consumer, make_producer
from cqcommon.settings import Settings

pytestmark = pytest.mark.integration

BUSY_MS = 20
IDLE_MS = 300


def _fetch_latency_avg_ms(consumer: Any) -> float:
    for group, values in consumer.metrics().items():
        if "fetch-manager" in group and "fetch-latency-avg" in values:
            return float(values["fetch-latency-avg"])
    raise AssertionError("kafka-python reports no fetch latency")


def _poll_until_records(consumer: Any, timeout_s: float = 20) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=500)
        if records:
            return sum(len(batch) for batch in records.values())
    raise AssertionError("no records within the timeout")


def test_an_idle_consumer_asks_with_the_long_wait_and_records_bring_the_short_one_back(
    test_settings: Settings,
) -> None:
    settings = test_settings.model_copy(
        update={"kafka_fetch_max_wait_ms": BUSY_MS, "kafka_fetch_idle_wait_ms": IDLE_MS}
    )
    topic = f"{settings.kafka_topic_prefix}fetch-wait-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic], partitions=1)
    consumer = make_consumer(settings, group_id=f"fetch-wait-{uuid.uuid4().hex[:8]}",
                             client_id="test-fetch-wait", metrics=True)  # fmt: skip
    producer = make_producer(settings, client_id="test-fetch-wait")
    try:
        consumer.subscribe([topic])
        assert consumer.fetch_wait_ms == BUSY_MS  # a new consumer starts eager
        # the group join and a first empty poll: the topic is quiet
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
        consumer.poll(timeout_ms=500)
        assert consumer.fetch_wait_ms == IDLE_MS
        # the fetches of a quiet second really carried the long wait: an idle topic's
        # fetch is answered when its wait ends, on Apache Kafka as on Tansu
        for _ in range(3):
            consumer.poll(timeout_ms=500)
        assert _fetch_latency_avg_ms(consumer) > IDLE_MS / 2

        producer.send(topic, b"one").get(timeout=10)
        assert _poll_until_records(consumer) == 1
        assert consumer.fetch_wait_ms == BUSY_MS
        # a peek (no timeout) that finds nothing is not quiet: the wait stays short
        consumer.poll(timeout_ms=0)
        assert consumer.fetch_wait_ms == BUSY_MS
    finally:
        producer.close()
        consumer.close()


def test_an_idle_wait_below_the_busy_wait_counts_as_the_busy_wait(
    test_settings: Settings,
) -> None:
    settings = test_settings.model_copy(
        update={"kafka_fetch_max_wait_ms": 100, "kafka_fetch_idle_wait_ms": 10}
    )
    consumer = make_consumer(settings, group_id="fetch-wait-floor", client_id="test")
    try:
        assert consumer.idle_wait_ms == 100
    finally:
        consumer.close()


def test_the_clients_keep_no_metrics_of_their_own_unless_asked(test_settings: Settings) -> None:
    """kafka-python's sensors, updated on every request and fetch, are read by nothing in
    the services: they are off in both clients (a tenth of a consumer's CPU per event)."""
    consumer = make_consumer(test_settings, group_id="metrics-off", client_id="metrics-off")
    producer = make_producer(test_settings, client_id="metrics-off")
    try:
        assert not consumer.metrics()
        assert not producer.metrics()
    finally:
        consumer.close()
        producer.close()
    asked = make_consumer(test_settings, group_id="metrics-on", client_id="m", metrics=True)
    try:
        assert asked.metrics()
    finally:
        asked.close()
