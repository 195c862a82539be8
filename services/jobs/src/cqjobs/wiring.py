"""How the runner is assembled: its schema and gRPC server (a ``ServiceSpec`` for
``cqcommon.runner``: it publishes no events and consumes none), and ``build_runner`` for
the command line, the scheduler and tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cqcommon.clock import Clock
from cqcommon.db import Database
from cqcommon.runner import ServiceSpec
from cqcommon.settings import Settings

from cqjobs.adapters.grpc_services import GrpcJobServices
from cqjobs.adapters.metrics import MetricsProgress, jobs_samplers
from cqjobs.adapters.postgres_locks import AdvisoryLocks
from cqjobs.adapters.postgres_runs import PostgresRunStore
from cqjobs.domain.catalogue import ADJUDICATION, FOLLOW, PAYMENT
from cqjobs.entrypoints.grpc_servicer import register
from cqjobs.ports import Progress
from cqjobs.service_layer.runner import JobRunner, RunnerConfig

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

#: a batch is bounded but may call a provider per item: far more than a request's deadline
BATCH_DEADLINE_S = 120.0

SPEC = ServiceSpec(
    name="jobs",
    schema="jobs",
    migrations_dir=MIGRATIONS_DIR,
    addr=lambda s: s.jobs_service_addr,
    register=register,
    consumers=(),
    publishes_events=False,
    samplers=jobs_samplers,
)


@dataclass
class RunnerParts:
    runner: JobRunner
    services: GrpcJobServices

    async def close(self) -> None:
        await self.services.close()


def build_runner(
    settings: Settings,
    db: Database,
    clock: Clock,
    progress: Progress,
    *,
    send_as_of: bool = False,
) -> RunnerParts:
    """The runner on PostgreSQL (records on ``db``, the jobs schema's pool; locks on
    connections of their own) and the services' gRPC ``RunJob``."""
    services = GrpcJobServices(
        {
            PAYMENT: settings.payment_service_addr,
            FOLLOW: settings.follow_service_addr,
            ADJUDICATION: settings.adjudication_service_addr,
        },
        deadline_s=max(settings.grpc_deadline_s, BATCH_DEADLINE_S),
    )
    runner = JobRunner(
        store=PostgresRunStore(db),
        locks=AdvisoryLocks(settings.database_url),
        services=services,
        clock=clock,
        progress=MetricsProgress(progress),
        config=RunnerConfig(
            batch_size=settings.jobs_batch_size,
            stop_margin=timedelta(seconds=settings.jobs_stop_margin_s),
            send_as_of=send_as_of,
        ),
    )
    return RunnerParts(runner, services)
