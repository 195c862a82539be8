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


#: kafka-python's own client metrics (sensors updated on every request and fetch) are read
#: by nothing here: our metrics come from the services and the lag reader. Off, they save
#: about a tenth of a consumer's CPU per event (bench/plumbing_floor.py); a test that
#: reads them asks for them.
CLIENT_METRICS = False


def make_producer(
    settings: Settings, *, client_id: str, metrics: bool = CLIENT_METRICS
) -> KafkaProducer:
    """An idempotent producer that waits for every in-sync replica (acks=all). The relay
    flushes after each batch, which sends at once whatever ``linger_ms`` would hold."""
    return KafkaProducer(
        metrics_enabled=metrics,
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


class AdaptiveWaitConsumer(KafkaConsumer):  # type: ignore[misc]  # untyped library
    """A ``KafkaConsumer`` whose fetches wait ``busy_wait_ms`` at the broker while polls
    return records, and ``idle_wait_ms`` once a poll returned none.

    Why: a fetch with a short wait keeps the lag of a busy topic low, but a consumer of a
    quiet topic then asks the broker (and Tansu answers) 50 times a second for nothing:
    measured about 0.1 core per idle consumer at 20 ms, against 0.02 at 500 ms, with six
    consumer groups in the cluster. The first poll that finds records switches back.

    kafka-python reads the wait from its fetcher's config for every fetch request it
    builds; that dict is private (``_fetcher.config``), so the constructor checks it is
    there and ``test_kafka_fetch_wait`` pins the behaviour to the installed version.
    """

    def __init__(self, *topics: str, idle_wait_ms: int, **configs: Any) -> None:
        super().__init__(*topics, **configs)
        self.busy_wait_ms: int = self.config["fetch_max_wait_ms"]
        self.idle_wait_ms = max(idle_wait_ms, self.busy_wait_ms)
        fetcher_config = getattr(getattr(self, "_fetcher", None), "config", None)
        if not isinstance(fetcher_config, dict) or "fetch_max_wait_ms" not in fetcher_config:
            raise RuntimeError("kafka-python's fetcher no longer keeps fetch_max_wait_ms")
        self._fetcher_config: dict[str, Any] = fetcher_config

    @property
    def fetch_wait_ms(self) -> int:
        """The wait the next fetch request will carry."""
        return int(self._fetcher_config["fetch_max_wait_ms"])

    def poll(self, timeout_ms: int = 0, max_records: int | None = None, **kwargs: Any) -> Any:
        records = super().poll(timeout_ms, max_records, **kwargs)
        # a poll without a timeout is a peek, not a sign of quiet
        if records or timeout_ms > 0:
            wait = self.busy_wait_ms if records else self.idle_wait_ms
            self._fetcher_config["fetch_max_wait_ms"] = wait
        return records


def make_consumer(
    settings: Settings, *, group_id: str, client_id: str, metrics: bool = CLIENT_METRICS
) -> AdaptiveWaitConsumer:
    """A group consumer that never auto-commits: offsets are committed after the transaction.

    A fetch returns as soon as one byte is there (``fetch_min_bytes=1``) and waits at most
    ``KAFKA_FETCH_MAX_WAIT_MS`` at the broker while records keep coming, so on a busy topic
    an event is fetched within milliseconds (kafka-python's default wait is 500 ms, and a
    broker may hold the fetch that long); after a poll that found nothing, at most
    ``KAFKA_FETCH_IDLE_WAIT_MS`` (``AdaptiveWaitConsumer``).
    """
    return AdaptiveWaitConsumer(
        metrics_enabled=metrics,
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
        idle_wait_ms=settings.kafka_fetch_idle_wait_ms,
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
