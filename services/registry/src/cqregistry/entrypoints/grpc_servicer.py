"""RegistryService gRPC servicer: decode the request, run the use case (the import, the
sandbox roster's load record), encode the answer."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.constraints import constraint_errors
from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.protomap import timestamp_to_proto
from cqcommon.runner import ServiceContext
from cqtraffic.registry.v1 import registry_pb2 as pb
from cqtraffic.registry.v1 import registry_pb2_grpc as pb_grpc

from cqregistry.adapters.constraints import REGISTRY_CONSTRAINTS
from cqregistry.adapters.postgres_master_records import PostgresRegistryUnitOfWork
from cqregistry.adapters.postgres_sandbox_roster import PostgresSandboxRosterLog
from cqregistry.domain.imports import MAX_BATCH
from cqregistry.entrypoints.mappers import RECORD_CODEC, entry_from_proto, envelope_of
from cqregistry.service_layer.import_records import import_records
from cqregistry.service_layer.sandbox_roster import mark_roster_loaded, roster_loaded_at

Context = grpc.aio.ServicerContext[Any, Any]


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def ImportRecords(
        self, request: pb.ImportRecordsRequest, context: Context
    ) -> pb.ImportRecordsResponse:
        if len(request.records) > MAX_BATCH:  # before decoding a huge batch
            raise DomainError(VALIDATION_FAILED, details={"records": f"at most {MAX_BATCH}"})
        entries = [entry_from_proto(i, r) for i, r in enumerate(request.records)]
        # constraint_errors outside the transaction: rolled back first, then translated
        with constraint_errors(REGISTRY_CONSTRAINTS):
            async with self.ctx.db.unit_of_work() as db_uow:
                result = await import_records(
                    uow=PostgresRegistryUnitOfWork(db_uow, envelope_of),
                    codec=RECORD_CODEC,
                    entries=entries,
                    republish=request.republish,
                )
        return pb.ImportRecordsResponse(
            changed=result.changed, unchanged=result.unchanged, ids=list(result.ids)
        )

    async def MarkSandboxRosterLoaded(
        self, request: pb.MarkSandboxRosterLoadedRequest, context: Context
    ) -> pb.MarkSandboxRosterLoadedResponse:
        if min(request.records, request.violations, request.follows) < 0:
            raise DomainError(VALIDATION_FAILED, details={"counts": "must not be negative"})
        loaded_at = await mark_roster_loaded(
            log=PostgresSandboxRosterLog(self.ctx.db),
            sandbox_mode=self.ctx.settings.sandbox_mode,
            records=request.records,
            violations=request.violations,
            follows=request.follows,
        )
        return pb.MarkSandboxRosterLoadedResponse(loaded_at=timestamp_to_proto(loaded_at))

    async def GetSandboxRosterStatus(
        self, request: pb.GetSandboxRosterStatusRequest, context: Context
    ) -> pb.GetSandboxRosterStatusResponse:
        loaded_at = await roster_loaded_at(log=PostgresSandboxRosterLog(self.ctx.db))
        if loaded_at is None:
            return pb.GetSandboxRosterStatusResponse(loaded=False)
        return pb.GetSandboxRosterStatusResponse(
            loaded=True, loaded_at=timestamp_to_proto(loaded_at)
        )


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["RegistryService"].full_name]
