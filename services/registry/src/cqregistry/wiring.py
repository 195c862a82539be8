"""How the registry import service is assembled (read by ``cqcommon.runner``)."""

from __future__ import annotations

from pathlib import Path

from cqcommon.runner import ServiceSpec

from cqregistry.entrypoints.grpc_servicer import register

SPEC = ServiceSpec(
    name="registry",
    schema="registry",
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    addr=lambda s: s.registry_service_addr,
    register=register,
)
