"""kafka-python plumbing: producer, consumer and admin factories with the project's
settings, topic creation, and trace-context headers.

kafka-python is blocking: async code calls it through ``asyncio.to_thread``.
The same code runs against Tansu locally and Apache Kafka in production.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from cqcommon.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3
Headers = list[tuple[str, bytes]]


def bootstrap(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def make_producer(settings: Settings, *, client_id: str) -> KafkaProducer:
    """An idempotent producer that waits for every in-sync replica (acks=all). The relay
    flushes after each batch, which sends at once whatever ``linger_ms`` would hold."""
    return KafkaProducer(
        bootstrap_servers=bootstrap(settings),
        client_id=client_id,
        acks="all",
        bootstrap_timeout_ms=5000,
        reconnect_backoff_max_ms=2000,
        enable_idempotence=True,
        linger_ms=5,
        max_block_ms=5000,
        request_timeout_ms=10000,
        retries=5,
        retry_backoff_ms=200,
    )


def make_consumer(settings: Settings, *, group_id: str, client_id: str) -> KafkaConsumer:
    """A group consumer that never auto-commits: offsets are committed after the transaction.

    A fetch waits at most ``KAFKA_FETCH_MAX_WAIT_MS`` at the broker and returns as soon as
    one byte is there (``fetch_min_bytes=1``): on a quiet topic an event is fetched within
    milliseconds (kafka-python's default wait is 500 ms, and a broker may hold the fetch
    that long).
    """
    return KafkaConsumer(
        bootstrap_servers=bootstrap(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        bootstrap_timeout_ms=5000,
        reconnect_backoff_max_ms=2000,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 5),
        max_poll_records=200,
        fetch_min_bytes=1,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        request_timeout_ms=max(30000, settings.kafka_session_timeout_ms + 5000),
    )


def make_admin(
    settings: Settings, *, client_id: str, bootstrap_timeout_ms: int = 5000
) -> KafkaAdminClient:
    # short bootstrap timeouts: a caller holding a DB transaction must not wait 30 s
    return KafkaAdminClient(
        bootstrap_servers=bootstrap(settings),
        client_id=client_id,
        request_timeout_ms=5000,
        bootstrap_timeout_ms=bootstrap_timeout_ms,
        reconnect_backoff_max_ms=2000,
    )


def ensure_topics(
    settings: Settings, topics: Iterable[str], *, partitions: int = DEFAULT_PARTITIONS
) -> None:
    """Create missing topics (idempotent). Tansu's memory storage loses them on restart,
    so producers and consumers call this whenever they (re)connect."""
    wanted = sorted(set(topics))
    if not wanted:
        return
    admin = make_admin(settings, client_id="cqtraffic-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        # a concurrent starter may win the race: its topics are as good as ours
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        log.info("created topics %s", missing)
    finally:
        admin.close()


def broker_answers(bootstrap_servers: str, *, timeout_s: float = 2.0, client_id: str) -> str | None:
    """The one Kafka reachability probe (service health, gateway /readyz, the dev stack).

    Blocking: bootstraps from ``bootstrap_servers`` and asks for the topic list. Returns
    None when the broker answered, else a short reason (never raises).
    """
    timeout_ms = max(100, int(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=[s.strip() for s in bootstrap_servers.split(",") if s.strip()],
            client_id=client_id,
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            reconnect_backoff_max_ms=2000,
        )
    except (KafkaError, OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    try:
        admin.list_topics()
        return None
    except (KafkaError, OSError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        with contextlib.suppress(Exception):  # closing a probe must not change its answer
            admin.close()


def kafka_reachable(settings: Settings) -> bool:
    """True when the bootstrap servers answer a metadata request (service health checks)."""
    return broker_answers(settings.kafka_bootstrap_servers, client_id="cqtraffic-health") is None


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, key: str) -> str | None:
    for k, v in headers or ():
        if k == key and v is not None:
            return v.decode()
    return None


def headers_to_carrier(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: v.decode() for k, v in headers or () if v is not None}


def carrier_to_headers(carrier: dict[str, Any]) -> Headers:
    return [(k, str(v).encode()) for k, v in carrier.items()]
