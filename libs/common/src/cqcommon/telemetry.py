"""OpenTelemetry setup: one tracer provider per process with the service's resource, the
exporter chosen by settings (console, OTLP, in-memory for tests, or none), and W3C trace
context carried through Kafka headers and the outbox.

``setup_telemetry`` is idempotent: in tests several services share one process and one
provider (so one in-memory exporter sees the whole trace).

No personal data leaves in a span: every exporter is wrapped in ``PersonalDataScrubber``,
which replaces a request's raw path and URL by its route template and drops the query
string (``/internal/v1/vehicles?plate_number=…``), drops attributes that name a person
(client address, user agent, request headers, ``enduser.*``) and masks anything shaped like
an ID number, a mobile number, a plate or a VIN in the attributes that remain. It works
on finished spans, so it covers attributes an instrumentation sets at any time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from cqcommon.settings import Settings

#: attributes that identify the person behind a request (PIPL: an IP address or a device
#: fingerprint is personal information); a prefix ends with a dot
DENIED_ATTRIBUTES = frozenset(
    {
        "http.client_ip",
        "client.address",
        "client.port",
        "net.peer.ip",
        "net.peer.port",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "network.peer.address",
        "network.peer.port",
        "http.user_agent",
        "user_agent.original",
        "http.request.header.",
        "http.response.header.",
        "rpc.request.metadata.",
        "enduser.",
        "user.",
    }
)
#: a request's path and URL: replaced by the route template, never a raw value
_PATH_ATTRIBUTES = ("http.target", "url.path")
_URL_ATTRIBUTES = ("http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)
REDACTED = "[redacted]"
#: defence in depth for values no rule above knew of: resident ID numbers (18 characters),
#: mainland mobile numbers, plates (province character, letter, 5-6 more) and VINs
_PERSONAL_PATTERNS = re.compile(
    r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"
    r"|[\u4e00-\u9fff][A-Z][A-Z0-9\u4e00-\u9fff]{5,6}"
    r"|(?<![0-9A-Za-z])[A-HJ-NPR-Z0-9]{17}(?![0-9A-Za-z])"
)


def _denied(key: str) -> bool:
    return key in DENIED_ATTRIBUTES or any(
        key.startswith(prefix) for prefix in DENIED_ATTRIBUTES if prefix.endswith(".")
    )


def _mask(value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        return _PERSONAL_PATTERNS.sub(REDACTED, value)
    if isinstance(value, Sequence) and value and isinstance(value[0], str):
        return [_PERSONAL_PATTERNS.sub(REDACTED, str(v)) for v in value]
    return value


def scrub_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """``attributes`` with no personal data: see the module docstring."""
    route = attributes.get("http.route")
    clean: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if _denied(key) or key in _QUERY_ATTRIBUTES:
            continue
        if key in _PATH_ATTRIBUTES:
            if isinstance(route, str):
                clean[key] = route
            continue  # an unmatched path is whatever the client typed
        if key in _URL_ATTRIBUTES:
            if isinstance(value, str) and isinstance(route, str):
                parts = urlsplit(value)
                clean[key] = urlunsplit((parts.scheme, parts.netloc, route, "", ""))
            continue
        clean[key] = _mask(value)
    return clean


class PersonalDataScrubber(SpanExporter):
    """Wraps an exporter: spans reach it with ``scrub_attributes`` applied (also to the
    attributes of their events), so traces can be kept and shared without personal data."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose attributes (and its events') hold no personal data."""
    events = [Event(e.name, scrub_attributes(e.attributes or {}), e.timestamp) for e in span.events]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_attributes(span.attributes or {}),
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


_lock = threading.Lock()
_memory_exporter: InMemorySpanExporter | None = None
_tracing = False


def tracing_active() -> bool:
    """Whether spans go anywhere. With ``OTEL_EXPORTER=none`` the HTTP and gRPC
    instrumentation is left out entirely: it would cost a tenth of every request's CPU
    for spans nobody receives (and logs then carry no trace id)."""
    return _tracing


def setup_telemetry(service_name: str, settings: Settings) -> TracerProvider | None:
    """Install (once) and return the process's tracer provider; None when spans would go
    nowhere (``OTEL_EXPORTER=none`` and no OTLP endpoint).

    Why none then, rather than a provider without processors: a configured provider is
    what switches on FastAPI's native telemetry and every library's spans, which were
    then made (ids, attributes, context switches) for nobody, about a sixth of the
    gateway's CPU per request. OpenTelemetry's API default is the no-op tracer."""
    global _memory_exporter, _tracing
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        exporter = settings.otel_exporter
        if exporter == "none" and settings.otel_exporter_otlp_endpoint:
            exporter = "otlp"
        _tracing = exporter != "none"
        if not _tracing:
            return None
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service_name, "service.namespace": "cqtraffic"}
            )
        )
        if exporter == "console":
            provider.add_span_processor(
                BatchSpanProcessor(PersonalDataScrubber(ConsoleSpanExporter()))
            )
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            otlp = OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)
            provider.add_span_processor(BatchSpanProcessor(PersonalDataScrubber(otlp)))
        elif exporter == "memory":
            # tests read what an exporter would have been given: scrubbed
            _memory_exporter = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(PersonalDataScrubber(_memory_exporter)))
        trace.set_tracer_provider(provider)
        return provider


def memory_exporter() -> InMemorySpanExporter:
    """The in-memory exporter installed by ``OTEL_EXPORTER=memory`` (tests)."""
    if _memory_exporter is None:
        raise RuntimeError("telemetry was not set up with the in-memory exporter")
    return _memory_exporter


def inject_carrier(context: otel_context.Context | None = None) -> dict[str, str]:
    """The trace context (the current one by default) as W3C headers (traceparent,
    tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None outside a span (for logs and audit)."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
