"""OpenTelemetry setup: one tracer provider per process with the service's resource, the
exporter chosen by settings (console, OTLP, in-memory for tests, or none), and W3C trace
context carried through Kafka headers and the outbox.

``setup_telemetry`` is idempotent: in tests several services share one process and one
provider (so one in-memory exporter sees the whole trace).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqcommon.settings import Settings

_lock = threading.Lock()
_memory_exporter: InMemorySpanExporter | None = None
_tracing = False


def tracing_active() -> bool:
    """Whether spans go anywhere. With ``OTEL_EXPORTER=none`` the HTTP and gRPC
    instrumentation is left out entirely: it would cost a tenth of every request's CPU
    for spans nobody receives (and logs then carry no trace id)."""
    return _tracing


def setup_telemetry(service_name: str, settings: Settings) -> TracerProvider:
    """Install (once) and return the process's tracer provider."""
    global _memory_exporter, _tracing
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service_name, "service.namespace": "cqtraffic"}
            )
        )
        exporter = settings.otel_exporter
        if exporter == "none" and settings.otel_exporter_otlp_endpoint:
            exporter = "otlp"
        if exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint))
            )
        elif exporter == "memory":
            _memory_exporter = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(_memory_exporter))
        _tracing = exporter != "none"
        trace.set_tracer_provider(provider)
        return provider


def memory_exporter() -> InMemorySpanExporter:
    """The in-memory exporter installed by ``OTEL_EXPORTER=memory`` (tests)."""
    if _memory_exporter is None:
        raise RuntimeError("telemetry was not set up with the in-memory exporter")
    return _memory_exporter


def inject_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None outside a span (for logs and audit)."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
