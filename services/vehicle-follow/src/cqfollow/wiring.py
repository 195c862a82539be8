"""How the follow service is assembled: its schema, migrations, gRPC servicer and the
registry consumer (read by ``cqcommon.runner``)."""

from __future__ import annotations

from pathlib import Path

from cqcommon.runner import ServiceSpec

from cqfollow.entrypoints.consumers import REGISTRY_CONSUMER
from cqfollow.entrypoints.grpc_servicer import register

SPEC = ServiceSpec(
    name="follow",
    schema="follow",
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    addr=lambda s: s.follow_service_addr,
    register=register,
    consumers=[REGISTRY_CONSUMER],
)
