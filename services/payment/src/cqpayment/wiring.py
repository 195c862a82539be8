"""How the payment service is assembled: its schema, migrations, gRPC servicer and
consumers (read by ``cqcommon.runner``)."""

from __future__ import annotations

from pathlib import Path

from cqcommon.runner import ServiceSpec

from cqpayment.adapters.postgres_metrics import payment_samplers
from cqpayment.entrypoints.consumers import REGISTRY_CONSUMER, VIOLATION_CONSUMER
from cqpayment.entrypoints.grpc_servicer import register

SPEC = ServiceSpec(
    name="payment",
    schema="payment",
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    addr=lambda s: s.payment_service_addr,
    register=register,
    consumers=[VIOLATION_CONSUMER, REGISTRY_CONSUMER],
    samplers=payment_samplers,
)
