"""RegistryService gRPC servicer."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.runner import ServiceContext
from cqtraffic.registry.v1 import registry_pb2 as pb
from cqtraffic.registry.v1 import registry_pb2_grpc as pb_grpc

from cqregistry.service_layer.import_records import import_records

Context = grpc.aio.ServicerContext[Any, Any]


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def ImportRecords(
        self, request: pb.ImportRecordsRequest, context: Context
    ) -> pb.ImportRecordsResponse:
        async with self.ctx.db.unit_of_work() as uow:
            result = await import_records(uow=uow, records=list(request.records))
        return pb.ImportRecordsResponse(changed=result.changed, unchanged=result.unchanged)


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["RegistryService"].full_name]
