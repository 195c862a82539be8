"""QueryService gRPC servicer: decode, apply the access rule, read, encode."""

from __future__ import annotations

from typing import Any, Literal

import grpc
from cqcommon.errors import NOT_FOUND, DomainError
from cqcommon.grpc_server import not_implemented
from cqcommon.protomap import STATUS_NAMES
from cqcommon.runner import ServiceContext
from cqtraffic.query.v1 import query_pb2 as pb
from cqtraffic.query.v1 import query_pb2_grpc as pb_grpc

from cqquery.adapters.postgres_read_model import PostgresReadModel
from cqquery.domain.access import require_access
from cqquery.domain.cursor import decode_cursor, encode_cursor, page_size
from cqquery.mappers import violation_to_proto

Context = grpc.aio.ServicerContext[Any, Any]


class QueryServicer(pb_grpc.QueryServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def ResolveUser(
        self, request: pb.ResolveUserRequest, context: Context
    ) -> pb.ResolveUserResponse:
        async with self.ctx.db.connection() as conn:
            person_id = await PostgresReadModel(conn).person_for_user(request.alipay_user_id)
        return pb.ResolveUserResponse(person_id=person_id or "")

    async def ListViolations(
        self, request: pb.ListViolationsRequest, context: Context
    ) -> pb.ListViolationsResponse:
        subject = request.WhichOneof("subject")
        if subject is None:
            raise DomainError(NOT_FOUND)
        kind: Literal["vehicle", "licence"] = "vehicle" if subject == "vehicle_id" else "licence"
        subject_id = getattr(request, subject)
        limit = page_size(request.page.page_size)
        after = decode_cursor(request.page.cursor) if request.page.cursor else None
        status = STATUS_NAMES.get(request.status) if request.status else None
        caller = request.caller
        async with self.ctx.db.connection() as conn:
            model = PostgresReadModel(conn)
            facts = await model.subject_facts(kind, subject_id, caller_user_id=caller.user_id)
            require_access(facts, caller_person_id=caller.person_id, is_staff=bool(caller.staff_id))
            rows = await model.violations(
                kind, subject_id, status=status, after=after, limit=limit + 1
            )
        next_cursor = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].violation_id)
        return pb.ListViolationsResponse(
            violations=[violation_to_proto(r) for r in rows], next_cursor=next_cursor
        )

    # -- filled in by the violation-query issue ------------------------------------------

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.GetMeResponse:
        raise not_implemented("GetMe")

    async def LookupVehicle(
        self, request: pb.LookupVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        raise not_implemented("LookupVehicle")

    async def LookupLicence(
        self, request: pb.LookupLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        raise not_implemented("LookupLicence")

    async def GetViolation(
        self, request: pb.GetViolationRequest, context: Context
    ) -> pb.ViolationView:
        raise not_implemented("GetViolation")

    async def StaffGetVehicle(
        self, request: pb.StaffGetVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        raise not_implemented("StaffGetVehicle")

    async def StaffGetLicence(
        self, request: pb.StaffGetLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        raise not_implemented("StaffGetLicence")


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_QueryServiceServicer_to_server(QueryServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["QueryService"].full_name]
