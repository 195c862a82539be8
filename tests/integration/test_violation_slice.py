"""The vertical slice through every layer: a counter records a violation, adjudication
stores it and publishes ViolationRecorded through its outbox, query applies it to its
read model, and the owner sees it — real PostgreSQL, Redis and Kafka throughout."""

from __future__ import annotations

from typing import Any

import pytest
from cqcommon.grpc_client import call, make_channel
from cqcommon.telemetry import memory_exporter
from cqdev.testing import Cluster, Owner, eventually, new_owner, violation_code_record
from cqtraffic.registry.v1 import registry_pb2 as reg
from cqtraffic.registry.v1 import registry_pb2_grpc as reg_grpc

pytestmark = pytest.mark.integration


async def import_owner(cluster: Cluster, owner: Owner) -> None:
    addr = cluster.settings.registry_service_addr
    channel = make_channel(addr)
    try:
        stub = reg_grpc.RegistryServiceStub(channel)
        records = [*owner.records(), violation_code_record()]
        await call(stub.ImportRecords, reg.ImportRecordsRequest(records=records), timeout_s=5)
    finally:
        await channel.close(grace=None)


def violation_body(owner: Owner, record_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": record_id,
        "plate_type": "02",
        "plate_number": owner.plate_number,
        "violation_code": "1345",
        "occurred_at": "2026-11-01T08:30:00+08:00",
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
    }
    return body | overrides


async def record_when_known(cluster: Cluster, staff: dict[str, str], body: dict[str, Any]) -> Any:
    """Adjudication learns the vehicle from a registry event: retry until it has."""

    async def attempt() -> Any:
        r = await cluster.http.post("/internal/v1/violations", json=body, headers=staff)
        if r.status_code == 404:
            return None
        return r

    return await eventually(attempt)


async def test_recorded_violation_reaches_the_owner(cluster: Cluster) -> None:
    owner = new_owner()
    await import_owner(cluster, owner)
    staff = await cluster.staff()
    created = await record_when_known(cluster, staff, violation_body(owner, "cam-0001"))
    assert created.status_code == 201, created.text
    violation_id = created.json()["violation_id"]
    assert created.json()["status"] == "unhandled"
    assert created.json()["points"] == 3  # the code's second digit

    # the same source record again: the first result, not a second violation
    replay = await cluster.http.post(
        "/internal/v1/violations", json=violation_body(owner, "cam-0001"), headers=staff
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["violation_id"] == violation_id

    user = await cluster.login(owner.alipay_user_id)

    async def listed() -> Any:
        r = await cluster.http.get(
            "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=user
        )
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
    staff = await cluster.staff()
    await record_when_known(cluster, staff, violation_body(owner, "cam-foreign-1"))
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
    await record_when_known(cluster, staff, violation_body(owner, "cam-conflict"))
    r = await cluster.http.post(
        "/internal/v1/violations",
        json=violation_body(owner, "cam-conflict", fine_fen=10_000),
        headers=staff,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "SOURCE_RECORD_CONFLICT"


async def test_one_trace_from_gateway_to_read_model(cluster: Cluster) -> None:
    """Trace context crosses HTTP → gRPC → outbox → Kafka → consumer."""
    owner = new_owner()
    await import_owner(cluster, owner)
    staff = await cluster.staff()
    exporter = memory_exporter()
    created = await record_when_known(cluster, staff, violation_body(owner, "cam-trace"))
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
