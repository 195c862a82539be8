"""How the adjudication service is assembled: its schema, migrations, gRPC servicer
and consumers (read by ``cqcommon.runner``)."""

from __future__ import annotations

from pathlib import Path

from cqcommon.runner import ServiceSpec

from cqadjudication.adapters.postgres_metrics import adjudication_samplers
from cqadjudication.entrypoints.grpc_servicer import register
from cqadjudication.entrypoints.payment_consumer import PAYMENT_CONSUMER
from cqadjudication.entrypoints.registry_consumer import REGISTRY_CONSUMER

SPEC = ServiceSpec(
    name="adjudication",
    schema="adjudication",
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    addr=lambda s: s.adjudication_service_addr,
    register=register,
    consumers=[REGISTRY_CONSUMER, PAYMENT_CONSUMER],
    samplers=adjudication_samplers,
)
