"""The vertical slice through every layer: a counter records a violation, adjudication
stores it and publishes ViolationRecorded through its outbox, query applies it to its
read model, and the owner sees it — real PostgreSQL, Redis and Kafka throughout."""

from __future__ import annotations

from typing import Any

import pytest
from cqcommon.telemetry import memory_exporter
from cqdev.testing import (
    Cluster,
    Owner,
    eventually,
    new_owner,
    violation_body,
    violation_code_record,
)

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


async def test_one_trace_from_gateway_to_read_model(cluster: Cluster) -> None:
    """Trace context crosses HTTP → gRPC → outbox → Kafka → consumer."""
    owner = new_owner()
    await import_owner(cluster, owner)
    exporter = memory_exporter()
    created = await cluster.record_violation(body_for(owner, "cam-trace"))
    assert created.status_code == 201
    violation_id = created.json()["violation_id"]

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
            if any(
                t.attributes and t.attributes.get("violation_id") == violation_id
                for t in trace_spans
            ) or any(n.name.startswith("POST /internal/v1/violations") for n in trace_spans):
                return trace_spans
        return None

    trace_spans = await eventually(consumed_trace)
    names = {s.name for s in trace_spans}
    assert any("RecordViolation" in n for n in names), names  # gRPC server span
    assert any(n.startswith("POST") for n in names), names  # gateway span
