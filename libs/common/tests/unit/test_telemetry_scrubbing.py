"""What a span may carry when it leaves the process (cqcommon.telemetry.scrub_attributes):
the route instead of a raw path or URL, no query string, no attribute naming the caller,
and no value shaped like an ID number, a mobile number, a plate or a VIN."""

from __future__ import annotations

from cqcommon.telemetry import REDACTED, PersonalDataScrubber, scrub_attributes
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

PLATE = "渝A12345"
ID_NUMBER = "50010119900101123X"
PHONE = "13912345678"
VIN = "LSVAB12C0M1123456"


def test_a_lookup_url_keeps_its_route_and_loses_its_query_string() -> None:
    clean = scrub_attributes(
        {
            "http.route": "/internal/v1/vehicles",
            "http.url": f"http://gw:8000/internal/v1/vehicles?plate_type=02&plate_number={PLATE}",
            "http.target": f"/internal/v1/vehicles?plate_number={PLATE}",
            "url.path": "/internal/v1/vehicles",
            "url.query": f"plate_number={PLATE}",
            "http.method": "GET",
            "http.status_code": 200,
        }
    )
    assert clean == {
        "http.route": "/internal/v1/vehicles",
        "http.url": "http://gw:8000/internal/v1/vehicles",
        "http.target": "/internal/v1/vehicles",
        "url.path": "/internal/v1/vehicles",
        "http.method": "GET",
        "http.status_code": 200,
    }


def test_a_path_without_a_route_is_dropped() -> None:
    # an unmatched path is whatever the client typed, a plate or an ID number included
    clean = scrub_attributes({"http.target": f"/api/v1/{ID_NUMBER}", "http.url": "http://x/y"})
    assert clean == {}


def test_attributes_naming_the_caller_are_dropped() -> None:
    clean = scrub_attributes(
        {
            "http.request.header.authorization": ("Bearer abc",),
            "enduser.id": "2088000000000001",
            "net.peer.ip": "10.1.2.3",
            "client.address": "10.1.2.3",
            "http.user_agent": "AlipayClient/10.5",
            "rpc.method": "RecordViolation",
        }
    )
    assert clean == {"rpc.method": "RecordViolation"}


def test_values_shaped_like_personal_data_are_masked() -> None:
    text = f"owner {ID_NUMBER} phone {PHONE} plate {PLATE} vin {VIN}"
    clean = scrub_attributes({"note": text, "many": [PLATE, "ok"]})
    assert clean["note"] == f"owner {REDACTED} phone {REDACTED} plate {REDACTED} vin {REDACTED}"
    assert clean["many"] == [REDACTED, "ok"]


def test_identifiers_that_are_not_personal_survive() -> None:
    attrs = {
        "messaging.message.id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "decision": "5001001234567890",  # a 16-digit decision number
        "trace": "0af7651916cd43dd8448eb211c80319c",
    }
    assert scrub_attributes(attrs) == attrs


def test_the_exporter_receives_scrubbed_spans() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PersonalDataScrubber(memory)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET", kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("http.route", "/internal/v1/licences")
        span.set_attribute("http.target", f"/internal/v1/licences?licence_no={ID_NUMBER}")
        span.add_event("lookup", {"who": PHONE})
    (exported,) = memory.get_finished_spans()
    assert exported.attributes == {
        "http.route": "/internal/v1/licences",
        "http.target": "/internal/v1/licences",
    }
    assert exported.events[0].attributes == {"who": REDACTED}
    provider.shutdown()
