"""QueryService gRPC servicer: decode the request, call the use case, encode its result."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.errors import NOT_FOUND, DomainError
from cqcommon.protomap import STATUS_NAMES, plate_type_from_proto
from cqcommon.runner import ServiceContext
from cqtraffic.query.v1 import query_pb2 as pb
from cqtraffic.query.v1 import query_pb2_grpc as pb_grpc

from cqquery.bootstrap import build_views
from cqquery.domain.model import Kind
from cqquery.entrypoints.mappers import (
    caller_from_proto,
    detail_to_proto,
    list_page_to_proto,
    lookup_to_proto,
    me_to_proto,
)
from cqquery.service_layer.views import QueryViews

Context = grpc.aio.ServicerContext[Any, Any]


def _plate_type(value: int) -> str:
    plate = plate_type_from_proto(value)
    return plate.value if plate else ""


class QueryServicer(pb_grpc.QueryServiceServicer):
    def __init__(self, views: QueryViews) -> None:
        self.views = views

    async def ResolveUser(
        self, request: pb.ResolveUserRequest, context: Context
    ) -> pb.ResolveUserResponse:
        person_id = await self.views.resolve_user(request.alipay_user_id)
        return pb.ResolveUserResponse(person_id=person_id or "")

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.GetMeResponse:
        caller = await self.views.with_person(caller_from_proto(request.caller))
        return me_to_proto(await self.views.get_me(caller))

    async def ListViolations(
        self, request: pb.ListViolationsRequest, context: Context
    ) -> pb.ListViolationsResponse:
        subject = request.WhichOneof("subject")
        if subject is None:
            raise DomainError(NOT_FOUND)
        kind: Kind = "vehicle" if subject == "vehicle_id" else "licence"
        page = await self.views.list_violations(
            await self.views.with_person(caller_from_proto(request.caller)),
            kind,
            getattr(request, subject),
            status=STATUS_NAMES.get(request.status) if request.status else None,
            page_size_requested=request.page.page_size,
            cursor=request.page.cursor,
        )
        return list_page_to_proto(page)

    async def LookupVehicle(
        self, request: pb.LookupVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        found = await self.views.lookup_vehicle(
            caller_from_proto(request.caller),
            plate_type=_plate_type(request.plate_type),
            plate_number=request.plate_number,
            vin=request.vin,
        )
        return lookup_to_proto(found)

    async def LookupLicence(
        self, request: pb.LookupLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        found = await self.views.lookup_licence(
            caller_from_proto(request.caller),
            name=request.name,
            licence_no=request.licence_no,
            file_no=request.file_no,
        )
        return lookup_to_proto(found)

    async def GetViolation(
        self, request: pb.GetViolationRequest, context: Context
    ) -> pb.ViolationView:
        caller = await self.views.with_person(caller_from_proto(request.caller))
        return detail_to_proto(await self.views.get_violation(caller, request.violation_id))

    async def StaffGetVehicle(
        self, request: pb.StaffGetVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        found = await self.views.staff_get_vehicle(
            caller_from_proto(request.caller),
            plate_type=_plate_type(request.plate_type),
            plate_number=request.plate_number,
            page_size_requested=request.page.page_size,
            cursor=request.page.cursor,
        )
        return lookup_to_proto(found)

    async def StaffGetLicence(
        self, request: pb.StaffGetLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        found = await self.views.staff_get_licence(
            caller_from_proto(request.caller),
            licence_no=request.licence_no,
            page_size_requested=request.page.page_size,
            cursor=request.page.cursor,
        )
        return lookup_to_proto(found)

    async def GetRelations(
        self, request: pb.GetRelationsRequest, context: Context
    ) -> pb.GetRelationsResponse:
        """R-Q-1 for adjudication (R-ADJ-3/4): the caller's relation to each vehicle."""
        caller = await self.views.with_person(caller_from_proto(request.caller))
        relations = await self.views.vehicle_relations(caller, list(request.vehicle_ids))
        return pb.GetRelationsResponse(relations=relations)


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_QueryServiceServicer_to_server(QueryServicer(build_views(ctx)), server)
    return [pb.DESCRIPTOR.services_by_name["QueryService"].full_name]
