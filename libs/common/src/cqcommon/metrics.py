"""Prometheus metrics of every process (issue 12), through the official client
(``prometheus_client``): the metric definitions, the gRPC server interceptor, the ``/metrics``
endpoint of the services and the job runner, and the sampler of the gauges that need a query.

Why it is shaped this way:

- **One definition per metric, at module level, in the default registry.** The in-process
  test cluster runs every service in one process, so a metric defined per service would be
  registered twice; instead the series carry a ``service`` label where two processes could
  report the same name.
- **Low-cardinality labels only.** Routes are templates (``/api/v1/violations/{violation_id}``),
  methods are ``Service/Method``, error codes come from the one catalogue, job names from the
  job catalogue, reasons from fixed lists. No label ever holds an id, a plate, a phone or a
  user: ``/metrics`` needs no token and must not carry personal data.
- **Gauges that need a query are sampled**, every ``METRICS_SAMPLE_INTERVAL_S``, by one task
  per process (``MetricsSampler``), never on the scrape: a scrape stays cheap and a slow
  database or broker cannot hold it up. A failed sample is logged and counted
  (``cqtraffic_metrics_sample_errors_total``) and leaves the gauge at its last value; it
  never stops the sampler. Several replicas of one service sample the same tables, so the
  dashboards and alerts aggregate such gauges with ``max``, not ``sum``.
- **Counters are incremented where the thing happens** (a request answered, an event
  applied, an SMS sent or refused, a job batch done), each with one line at that place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from cqcommon.asyncutil import sleep_or_stop
from cqcommon.errors import CATALOGUE, DomainError
from cqcommon.grpc_errors import status_for

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from cqcommon.db import Database
    from cqcommon.settings import Settings
    from cqcommon.sms import SmsSender

log = logging.getLogger(__name__)

#: request and RPC latency buckets (s): a cached read is a few ms, a payment's Alipay call
#: up to its 5 s deadline, a nightly batch far more
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# -- HTTP (the gateway) -------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "cqtraffic_http_requests",
    "Requests the gateway answered, by route template, method, status and error code"
    " ('' when not an error).",
    ["route", "method", "status", "code"],
)
HTTP_DURATION = Histogram(
    "cqtraffic_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
ALIPAY_NOTIFICATIONS_REJECTED = Counter(
    "cqtraffic_alipay_notifications_rejected",
    "Alipay notifications not recorded because they were refused (by reason).",
    ["reason"],
)

# -- gRPC (every service) ----------------------------------------------------------------------
GRPC_HANDLED = Counter(
    "cqtraffic_grpc_server_handled",
    "RPCs a service answered, by service, method, gRPC status and error code ('' when OK).",
    ["service", "method", "grpc_code", "code"],
)
GRPC_DURATION = Histogram(
    "cqtraffic_grpc_server_handling_seconds",
    "Time a service took to answer an RPC, by service and method.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)

# -- events: outbox and consumers --------------------------------------------------------------
OUTBOX_PENDING = Gauge(
    "cqtraffic_outbox_pending_events",
    "Events in a service's outbox not yet published to Kafka (sampled).",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "cqtraffic_outbox_oldest_pending_age_seconds",
    "Age of the oldest event in a service's outbox not yet published (0 when none; sampled).",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "cqtraffic_consumer_lag_messages",
    "Messages on a consumer group's topics after its committed offsets (sampled from the broker).",
    ["service", "group"],
)
CONSUMER_EVENTS = Counter(
    "cqtraffic_consumer_events",
    "Events a consumer group took: applied, duplicate (already applied, skipped) or dead_lettered.",
    ["group", "outcome"],
)
BACKGROUND_TASK_RESTARTS = Counter(
    "cqtraffic_background_task_restarts",
    "Background loops (relay, consumer groups, event-log pruner, metrics sampler) that crashed"
    " and were started again (cqcommon.runner); none should.",
    ["service", "task"],
)
EVENT_LOG_PRUNED = Counter(
    "cqtraffic_event_log_pruned_rows",
    "Outbox and inbox rows deleted after their retention (cqcommon.retention), by schema.",
    ["schema", "table"],
)

# -- payment -----------------------------------------------------------------------------------
PAYMENTS = Gauge("cqtraffic_payments", "Payments by state (sampled).", ["state"])
REFUNDS_AWAITING = Gauge(
    "cqtraffic_refunds_awaiting_approval",
    "Refunds of duplicate payments waiting for a supervisor's approval (sampled).",
)
REFUNDS_OLDEST_AGE = Gauge(
    "cqtraffic_refunds_awaiting_approval_oldest_age_seconds",
    "Age of the oldest refund waiting for approval (0 when none; sampled).",
)

# -- adjudication ------------------------------------------------------------------------------
POINTS_BUYING_ALERTS = Gauge(
    "cqtraffic_points_buying_alerts_24h",
    "R-X-2 points-buying alerts raised in the last 24 hours, by kind (sampled).",
    ["kind"],
)

# -- SMS ---------------------------------------------------------------------------------------
SMS = Counter(
    "cqtraffic_sms_messages",
    "SMS by service, purpose and outcome: sent, provider_refused (the gateway did not take"
    " it), resend_too_soon or phone_locked (refused by R-SMS-1/2 before sending).",
    ["service", "purpose", "outcome"],
)

# -- nightly jobs ------------------------------------------------------------------------------
JOB_RUNS = Counter(
    "cqtraffic_job_runs",
    "Nightly job runs by job and outcome (completed, paused, failed, skipped).",
    ["job", "outcome"],
)
JOB_ITEMS = Counter("cqtraffic_job_items", "Items the nightly jobs handled, by job.", ["job"])
JOB_LAST_SUCCESS = Gauge(
    "cqtraffic_job_last_success_timestamp_seconds",
    "When a job's latest completed run ended (Unix time; sampled from the run records).",
    ["job"],
)
JOB_LAST_FAILURE = Gauge(
    "cqtraffic_job_last_failure_timestamp_seconds",
    "When a job's latest failed run ended (Unix time; sampled from the run records).",
    ["job"],
)

# -- the sampler itself ------------------------------------------------------------------------
SAMPLE_ERRORS = Counter(
    "cqtraffic_metrics_sample_errors",
    "Samples of a gauge that failed (database or broker error, timeout), by service and sampler.",
    ["service", "sampler"],
)

#: every metric name this module defines, as Prometheus exposes it (the deploy checks use it)
METRIC_FAMILIES: tuple[Counter | Gauge | Histogram, ...] = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    ALIPAY_NOTIFICATIONS_REJECTED,
    GRPC_HANDLED,
    GRPC_DURATION,
    OUTBOX_PENDING,
    OUTBOX_OLDEST_AGE,
    CONSUMER_LAG,
    CONSUMER_EVENTS,
    EVENT_LOG_PRUNED,
    BACKGROUND_TASK_RESTARTS,
    PAYMENTS,
    REFUNDS_AWAITING,
    REFUNDS_OLDEST_AGE,
    POINTS_BUYING_ALERTS,
    SMS,
    JOB_RUNS,
    JOB_ITEMS,
    JOB_LAST_SUCCESS,
    JOB_LAST_FAILURE,
    SAMPLE_ERRORS,
)


def exposed_names() -> frozenset[str]:
    """Every series name the metrics above expose (``_total``, ``_bucket``, ...)."""
    names: set[str] = set()
    for metric in METRIC_FAMILIES:
        for family in metric.describe():
            names.add(family.name)
            if family.type == "counter":
                names.update({f"{family.name}_total", f"{family.name}_created"})
            elif family.type == "histogram":
                names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created"))
    return frozenset(names)


# -- helpers for the places that count ---------------------------------------------------------
#: reasons a notification is refused (the gateway's parse, the payment service's checks);
#: anything else is counted as ``other``, so a label can never hold a posted value
ALIPAY_REJECT_REASONS = frozenset(
    {
        "not_form",
        "too_large",
        "malformed",
        "empty",
        "duplicate_field",
        "invalid_characters",
        "bad_signature",
        "app_id_mismatch",
        "seller_id_mismatch",
        "unknown_trade",
        "amount_mismatch",
        "unspecified",
    }
)


def alipay_notification_rejected(reason: str) -> None:
    """Count one refused Alipay notification (a catalogued error code counts as itself)."""
    known = reason in ALIPAY_REJECT_REASONS or reason in CATALOGUE
    ALIPAY_NOTIFICATIONS_REJECTED.labels(reason if known else "other").inc()


class CountingSmsSender:
    """An ``SmsSender`` that counts what it sends and what the provider refuses."""

    def __init__(self, inner: SmsSender, *, service: str, purpose: str) -> None:
        self.inner = inner
        self._sent = SMS.labels(service, purpose, "sent")
        self._refused = SMS.labels(service, purpose, "provider_refused")

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        try:
            message_id = await self.inner.send(
                phone=phone, template_code=template_code, params=params
            )
        except Exception:
            self._refused.inc()
            raise
        self._sent.inc()
        return message_id

    def __getattr__(self, name: str) -> Any:
        # the recording sender's sandbox reads (``messages``...) pass through
        return getattr(self.inner, name)


# -- gRPC server interceptor -------------------------------------------------------------------
def short_method(full_method: str) -> str:
    """``/cqtraffic.payment.v1.PaymentService/CreatePayment`` → ``PaymentService/CreatePayment``."""
    _, _, rest = full_method.rpartition(".")
    return rest or full_method.lstrip("/")


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts and times every unary RPC by service, method, status and error code.

    Installed inside the domain-error interceptor, so it sees the ``DomainError`` itself (its
    catalogued code and the status it will leave as), not the abort that follows.
    """

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = short_method(handler_call_details.method)
        duration = GRPC_DURATION.labels(self.service, method)
        ok = GRPC_HANDLED.labels(self.service, method, "OK", "")
        service = self.service

        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            try:
                response = await inner(request, context)
            except DomainError as exc:
                code = exc.code if exc.code in CATALOGUE else "INTERNAL_ERROR"
                GRPC_HANDLED.labels(service, method, status_for(exc).name, code).inc()
                raise
            except asyncio.CancelledError:
                GRPC_HANDLED.labels(service, method, "CANCELLED", "").inc()
                raise
            except BaseException:
                failed = _context_code(context) or "INTERNAL"
                GRPC_HANDLED.labels(service, method, failed, "").inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)
            status = _context_code(context)
            if status is None or status == "OK":
                ok.inc()
            else:
                GRPC_HANDLED.labels(service, method, status, "").inc()
            return response

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _context_code(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The status a servicer set itself (``context.set_code`` / ``abort``), if any."""
    try:
        code = context.code()
    except Exception:  # older grpc.aio contexts have no code()
        return None
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    try:
        return str(grpc.StatusCode(code).name)  # grpc.aio may hand back the raw value
    except ValueError:
        return None


# -- the /metrics endpoint of services and the job runner --------------------------------------
@dataclass
class _Endpoint:
    server: WSGIServer
    thread: threading.Thread
    users: int = 0


_endpoints: dict[tuple[str, int], _Endpoint] = {}
_endpoints_lock = threading.Lock()


@dataclass
class MetricsEndpoint:
    """A running ``/metrics`` endpoint; ``close()`` once, when its runtime stops."""

    host: str
    port: int
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _endpoints_lock:
            endpoint = _endpoints.get((self.host, self.port))
            if endpoint is None:
                return
            endpoint.users -= 1
            if endpoint.users > 0:
                return
            del _endpoints[(self.host, self.port)]
        endpoint.server.shutdown()
        endpoint.server.server_close()
        endpoint.thread.join(timeout=5)


def serve_metrics(host: str, port: int) -> MetricsEndpoint:
    """Serve the default registry on ``http://host:port/metrics`` (prometheus_client's own
    threaded server: a scrape never waits for the event loop).

    Shared per address within a process: the in-process cluster's runtimes share one
    registry, so the second service asking for the same port gets the first's endpoint.
    """
    with _endpoints_lock:
        endpoint = _endpoints.get((host, port))
        if endpoint is None:
            server, thread = start_http_server(port, addr=host)
            port = int(server.server_address[1])  # the one chosen when asked for port 0
            endpoint = _Endpoint(server, thread)
            _endpoints[(host, port)] = endpoint
        endpoint.users += 1
    return MetricsEndpoint(host, port)


# -- sampled gauges ----------------------------------------------------------------------------
#: a sampler reads what it needs and sets its gauges
SampleFn = Callable[[], Awaitable[None]]
#: what a service contributes: given its database, the samplers to run (name → function)
ServiceSamplers = Callable[["Database"], Mapping[str, SampleFn]]


def at_most_every(period_s: float, sample: SampleFn) -> SampleFn:
    """``sample``, skipped when it ran less than ``period_s`` ago: for a gauge whose query
    scans a large table, so it costs the database once per period, not once per interval."""
    last = -float("inf")

    async def throttled() -> None:
        nonlocal last
        if time.monotonic() - last < period_s:
            return
        await sample()
        last = time.monotonic()

    return throttled


def outbox_sampler(db: Database, service: str) -> SampleFn:
    """Backlog and age of the oldest unpublished event of ``db``'s schema's outbox."""
    pending = OUTBOX_PENDING.labels(service)
    oldest = OUTBOX_OLDEST_AGE.labels(service)

    async def sample() -> None:
        async with db.connection() as conn:
            # both on the partial index of pending rows (outbox_pending_idx): cheap when the
            # backlog is small, which is the normal case
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
                " (SELECT EXTRACT(EPOCH FROM now() - created_at)::float8 FROM outbox"
                "  WHERE published_at IS NULL ORDER BY id LIMIT 1)"
            )
            row = await cur.fetchone()
        assert row is not None
        pending.set(int(row[0]))
        oldest.set(max(0.0, float(row[1] or 0.0)))

    return sample


class ConsumerLagReader:
    """Lag of consumer groups: end offset minus committed offset, summed over the
    partitions of the group's topics (a partition with no commit counts from its beginning).

    kafka-python is blocking, so ``read`` runs in a worker thread; its clients are made on
    first use and dropped after an error, so a broker that comes back is found again.
    """

    def __init__(self, settings: Settings, *, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._admin: Any = None
        self._consumer: Any = None
        self._lock = threading.Lock()

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaConsumer

        from cqcommon.kafka import bootstrap, make_admin

        if self._admin is None:
            self._admin = make_admin(self.settings, client_id=self.client_id)
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap(self.settings),
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                bootstrap_timeout_ms=5000,
                request_timeout_ms=10000,
                reconnect_backoff_max_ms=2000,
            )
        return self._admin, self._consumer

    def read(self, groups: Mapping[str, Sequence[str]]) -> dict[str, int]:
        """``{group: lag}`` for ``{kafka group id: topic names}`` (blocking)."""
        from kafka.structs import TopicPartition

        # a read that outlived its timeout still holds the lock: refuse rather than queue
        # behind it, so a hung broker cannot fill the worker threads the consumers need
        if not self._lock.acquire(blocking=False):
            raise TimeoutError("the previous consumer lag read is still running")
        try:
            try:
                admin, consumer = self._clients()
                lags: dict[str, int] = {}
                for group, topics in groups.items():
                    partitions = [
                        TopicPartition(topic, p)
                        for topic in topics
                        for p in sorted(consumer.partitions_for_topic(topic) or ())
                    ]
                    if not partitions:
                        lags[group] = 0
                        continue
                    # one group per request: older brokers (and Tansu) answer OffsetFetch < v8
                    committed = admin.list_group_offsets({group: partitions}).get(group, {})
                    ends = consumer.end_offsets(partitions)
                    starts = consumer.beginning_offsets(partitions)
                    lag = 0
                    for tp in partitions:
                        meta = committed.get(tp)
                        done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                        lag += max(0, int(ends[tp]) - int(done))
                    lags[group] = lag
                return lags
            except BaseException:
                self._close_clients()
                raise
        finally:
            self._lock.release()

    def _close_clients(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # a broken client may fail to close; it is dropped anyway
                    log.debug("lag reader close failed", exc_info=True)
        self._admin = self._consumer = None

    def close(self) -> None:
        # a read stuck on a dead broker ends within its request timeout; do not wait longer
        if not self._lock.acquire(timeout=15):
            log.warning("consumer lag reader still busy at close; its clients are left")
            return
        try:
            self._close_clients()
        finally:
            self._lock.release()


def consumer_lag_sampler(
    reader: ConsumerLagReader,
    service: str,
    groups: Mapping[str, tuple[str, Sequence[str]]],
    *,
    timeout_s: float,
) -> SampleFn:
    """Sets ``cqtraffic_consumer_lag_messages`` for ``{label: (kafka group id, topics)}``."""
    kafka_groups = {group: topics for group, topics in groups.values()}
    label_of = {group: label for label, (group, _) in groups.items()}

    async def sample() -> None:
        lags = await asyncio.wait_for(asyncio.to_thread(reader.read, kafka_groups), timeout_s)
        for group, lag in lags.items():
            CONSUMER_LAG.labels(service, label_of[group]).set(lag)

    return sample


class MetricsSampler:
    """Runs a process's samplers every ``interval_s`` until stopped."""

    def __init__(
        self,
        service: str,
        samplers: Mapping[str, SampleFn],
        *,
        interval_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        self.service = service
        self.samplers = dict(samplers)
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    async def sample_once(self) -> dict[str, bool]:
        """Run every sampler once; ``{name: succeeded}`` (a failure never raises)."""
        results: dict[str, bool] = {}
        for name, sample in self.samplers.items():
            try:
                await asyncio.wait_for(sample(), self.timeout_s)
                results[name] = True
            except asyncio.CancelledError:
                raise
            except Exception:
                SAMPLE_ERRORS.labels(self.service, name).inc()
                log.warning("metrics: %s sampler %s failed", self.service, name, exc_info=True)
                results[name] = False
        return results

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample_once()
            await sleep_or_stop(stop, self.interval_s)
