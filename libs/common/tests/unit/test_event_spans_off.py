"""With no span exporter (``OTEL_EXPORTER=none``, ``tracing_active()`` false) the event
path makes no spans at all, as the HTTP and gRPC layers do not: the relay passes the
stored trace context on unchanged and the consumer applies without a span. Spans nobody
receives cost CPU on the path of every event (issue 12, event lag). With an exporter the
trace runs through (tests/integration/test_violation_slice.py asserts it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cqcommon import inbox, outbox
from cqcommon.events import new_envelope
from cqcommon.inbox import EventConsumer, ReceivedEvent
from cqtraffic.registry.v1 import registry_pb2 as reg
from opentelemetry import trace


class NoSpansAllowed:
    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        raise AssertionError("a span was made while tracing is off")

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a span was made while tracing is off")


@pytest.fixture
def tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (outbox, inbox):
        monkeypatch.setattr(module, "tracing_active", lambda: False)
        monkeypatch.setattr(module, "tracer", NoSpansAllowed())


@dataclass
class Record:
    topic: str = "t"
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"k"
    value: bytes | None = b""
    headers: list[tuple[str, bytes | None]] = field(
        default_factory=lambda: [
            ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        ]
    )


def test_the_relay_makes_no_publish_span_while_tracing_is_off(tracing_off: None) -> None:
    span = outbox._publish_span("cqtraffic.X", {"traceparent": "00-ab-cd-01"}, "t", "id")
    assert span is trace.INVALID_SPAN
    assert not span.is_recording()  # so the stored carrier is sent on unchanged


def test_the_consumer_makes_no_consume_span_while_tracing_is_off(tracing_off: None) -> None:
    consumer = EventConsumer(
        db=None,  # type: ignore[arg-type]
        group_id="g",
        topics=["t"],
        handlers={},
        consumer_factory=lambda: None,
        producer_factory=lambda: None,
    )
    payload = reg.PersonRegistered(person_id="p")
    envelope = new_envelope(payload, aggregate_id="p", producer="test")
    event = ReceivedEvent(envelope, payload, "t", 0, 7)
    with consumer._span(envelope, Record()):
        pass
    with consumer._spans([(event, Record()), (event, Record())]):
        pass
