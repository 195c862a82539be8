"""How the query service is assembled (read by ``cqcommon.runner``)."""

from __future__ import annotations

from pathlib import Path

from cqcommon.runner import ServiceSpec

from cqquery.entrypoints.grpc_servicer import register
from cqquery.entrypoints.read_model_consumer import READ_MODEL_CONSUMER

SPEC = ServiceSpec(
    name="query",
    schema="query",
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    addr=lambda s: s.query_service_addr,
    register=register,
    consumers=[READ_MODEL_CONSUMER],
    publishes_events=False,
)
