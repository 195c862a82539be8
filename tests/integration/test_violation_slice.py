"""The vertical slice through every layer: a counter records a violation, adjudication
stores it and publishes ViolationRecorded through its outbox, query applies it to its
read model, and the owner sees it — real PostgreSQL, Redis and Kafka throughout."""

from __future__ import annotations

from typing import Any

import pytest
from cqcommon.events import TOPIC_VIOLATION
from cqcommon.telemetry import memory_exporter
from cqdev.testing import (
    Cluster,
    Owner,
    eventually,
    new_owner,
    violation_body,
    violation_code_record,
)
from opentelemetry.trace import SpanKind

pytestmark = pytest.mark.integration


async def import_owner(cluster: Cluster, owner: Owner) -> None:
    await cluster.import_records([*owner.records(), violation_code_record()])


def body_for(owner: Owner, record_id: str, **overrides: Any) -> dict[str, Any]:
    return violation_body(owner.plate_number, record_id, **overrides)


async def test_recorded_violation_reaches_the_owner(cluster: Cluster) -> None:
    owner = new_owner()
    await import_owner(cluster, owner)
    staff = await cluster.staff()
    created = await cluster.record_violation(body_for(owner, "cam-0001"))
    assert created.status_code == 201, created.text
    violation_id = created.json()["violation_id"]
    assert created.json()["status"] == "unhandled"
    assert created.json()["points"] == 3  # the code's second digit

    # the same source record again: the first result, not a second violation
    replay = await cluster.http.post(
        "/internal/v1/violations", json=body_for(owner, "cam-0001"), headers=staff
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["violation_id"] == violation_id

    user = await cluster.login(owner.alipay_user_id)

    async def listed() -> Any:
        r = await cluster.http.get(
            "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=user
        )
        # 404 until the read model has the vehicle's registry event (R-Q-1: not yet "yours")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()["violations"] or None

    violations = await eventually(listed)
    assert [v["violation_id"] for v in violations] == [violation_id]
    assert violations[0]["fine_fen"] == 20_000
    assert violations[0]["source"] == "non_site"


async def test_someone_elses_vehicle_is_not_found(cluster: Cluster) -> None:
    """R-Q-1: a foreign vehicle id answers 404 exactly like an unknown one."""
    owner, stranger = new_owner(), new_owner()
    await import_owner(cluster, owner)
    await import_owner(cluster, stranger)
    await cluster.record_violation(body_for(owner, "cam-foreign-1"))
    headers = await cluster.login(stranger.alipay_user_id)
    foreign = await cluster.http.get(
        "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=headers
    )
    unknown = await cluster.http.get(
        "/api/v1/violations",
        params={"vehicle_id": "7f1d4c1e-0000-4000-8000-000000000000"},
        headers=headers,
    )
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"] == "NOT_FOUND"


async def test_conflicting_resend_of_a_source_record_is_refused(cluster: Cluster) -> None:
    owner = new_owner()
    await import_owner(cluster, owner)
    staff = await cluster.staff()
    await cluster.record_violation(body_for(owner, "cam-conflict"))
    r = await cluster.http.post(
        "/internal/v1/violations",
        json=body_for(owner, "cam-conflict", fine_fen=10_000),
        headers=staff,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "SOURCE_RECORD_CONFLICT"


#: attribute keys that would carry a person's identity or credentials
DENIED_ATTRIBUTE_KEYS = (
    "http.request.header.authorization",
    "http.request.header.",
    "enduser.",
    "http.client_ip",
    "client.address",
    "net.peer.ip",
    "http.user_agent",
    "user_agent.original",
)


def personal_values(owner: Owner) -> list[str]:
    """What must never appear in a span: the owner's identity in every shape we hold it."""
    digits = "".join(c for c in owner.id_number if c.isdigit())
    return [
        owner.id_number,
        owner.id_number[:17],  # the ID number's digits without its check character
        digits,
        owner.phone,
        owner.name,
        owner.plate_number,
        owner.plate_number[1:],  # the plate without its province character
        owner.vin,
        owner.alipay_user_id,
    ]


def assert_no_personal_data(spans: list[Any], owner: Owner) -> None:
    forbidden = personal_values(owner)
    for span in spans:
        for key, value in (span.attributes or {}).items():
            assert not key.startswith(DENIED_ATTRIBUTE_KEYS), (span.name, key)
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                text = str(v)
                leaked = [f for f in forbidden if f in text]
                assert not leaked, (span.name, key, text)
        for event in span.events:
            for key, value in (event.attributes or {}).items():
                assert not any(f in str(value) for f in forbidden), (span.name, event.name, key)
        assert not any(f in span.name for f in forbidden), span.name


def ancestors(span: Any, by_id: dict[int, Any]) -> list[Any]:
    """``span``'s parents up to the root, nearest first (within the collected spans)."""
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_one_trace_from_gateway_to_read_model(cluster: Cluster) -> None:
    """Trace context crosses HTTP → gRPC → outbox → Kafka → consumer: one trace holds the
    gateway's request, adjudication's RPC, the relay's publish span and query's consumer
    span, in that order of descent; and no attribute of any span in it holds the owner's
    personal data (nor any span of a counter lookup that carries a plate in its URL)."""
    owner = new_owner()
    await import_owner(cluster, owner)
    exporter = memory_exporter()
    staff = await cluster.staff()
    exporter.clear()  # from here on, the only violation recorded is this test's
    created = await cluster.record_violation(body_for(owner, "cam-trace"), staff=staff)
    assert created.status_code == 201

    def consume_spans() -> list[Any]:
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == "consume ViolationRecorded"
            and s.attributes is not None
            and s.attributes.get("messaging.message.id")
        ]

    async def consumed_trace() -> Any:
        # the consumer span of *this* violation's event: its trace must start at the gateway
        for span in consume_spans():
            trace_spans = [
                t
                for t in exporter.get_finished_spans()
                if t.context.trace_id == span.context.trace_id
            ]
            if any(n.name.startswith("POST /internal/v1/violations") for n in trace_spans):
                return trace_spans
        return None

    trace_spans = await eventually(consumed_trace)
    names = {s.name for s in trace_spans}
    assert any(n.startswith("POST") for n in names), names  # gateway span
    by_id = {s.context.span_id: s for s in trace_spans}
    rpc = [s for s in trace_spans if s.kind == SpanKind.SERVER and "RecordViolation" in s.name]
    assert rpc, names  # adjudication's gRPC server span
    publish = [s for s in trace_spans if s.kind == SpanKind.PRODUCER]
    assert [s.name for s in publish] == ["publish ViolationRecorded"], names
    producer = publish[0]
    attributes = producer.attributes or {}
    assert attributes["messaging.system"] == "kafka"
    assert str(attributes["messaging.destination.name"]).endswith(TOPIC_VIOLATION)
    consumers = [s for s in trace_spans if s.name == "consume ViolationRecorded"]
    assert consumers
    assert attributes["messaging.message.id"] == (consumers[0].attributes or {}).get(
        "messaging.message.id"
    )
    assert rpc[0] in ancestors(producer, by_id)  # gRPC → relay's publish
    for consumer in consumers:
        assert ancestors(consumer, by_id)[0] is producer  # publish → consumer
    assert_no_personal_data(trace_spans, owner)

    # a counter lookup puts the plate in the query string: the span keeps the route only
    exporter.clear()
    looked_up = await cluster.http.get(
        "/internal/v1/vehicles",
        params={"plate_type": "02", "plate_number": owner.plate_number},
        headers=staff,
    )
    assert looked_up.status_code == 200, looked_up.text
    lookup_spans = [
        s for s in exporter.get_finished_spans() if s.name.startswith("GET /internal/v1/vehicles")
    ]
    assert lookup_spans
    lookup_trace = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == lookup_spans[0].context.trace_id
    ]
    assert_no_personal_data(lookup_trace, owner)
