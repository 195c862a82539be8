"""QueryService gRPC servicer: decode the request, call the use case, return its view."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.errors import NOT_FOUND, DomainError
from cqcommon.ratelimit import SlidingWindowLimiter
from cqcommon.runner import ServiceContext
from cqtraffic.query.v1 import query_pb2 as pb
from cqtraffic.query.v1 import query_pb2_grpc as pb_grpc

from cqquery.adapters.cache import ReadModelCache
from cqquery.adapters.eligibility import AdjudicationEligibility
from cqquery.adapters.postgres_read_model import Kind, PostgresReadModel
from cqquery.service_layer.views import QueryViews

Context = grpc.aio.ServicerContext[Any, Any]


def build_views(ctx: ServiceContext) -> QueryViews:
    settings = ctx.settings
    return QueryViews(
        db=ctx.db,
        cache=ReadModelCache(ctx.redis, ttl_s=settings.query_cache_ttl_s),
        eligibility=AdjudicationEligibility(
            ctx.channel(settings.adjudication_service_addr),
            timeout_s=settings.eligibility_timeout_s,
        ),
        lookup_limiter=SlidingWindowLimiter(
            ctx.redis, prefix="q:rl:lookup", limit=settings.lookup_rate_per_minute, window_s=60
        ),
        clock=ctx.clock,
        points_limit=settings.points_limit,
        proof_grant_ttl_s=settings.proof_grant_ttl_s,
    )


class QueryServicer(pb_grpc.QueryServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.views = build_views(ctx)

    async def ResolveUser(
        self, request: pb.ResolveUserRequest, context: Context
    ) -> pb.ResolveUserResponse:
        async with self.ctx.db.connection() as conn:
            person_id = await PostgresReadModel(conn).person_for_user(request.alipay_user_id)
        return pb.ResolveUserResponse(person_id=person_id or "")

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.GetMeResponse:
        return await self.views.get_me(await self.views.with_person(request.caller))

    async def ListViolations(
        self, request: pb.ListViolationsRequest, context: Context
    ) -> pb.ListViolationsResponse:
        subject = request.WhichOneof("subject")
        if subject is None:
            raise DomainError(NOT_FOUND)
        kind: Kind = "vehicle" if subject == "vehicle_id" else "licence"
        return await self.views.list_violations(
            await self.views.with_person(request.caller),
            kind,
            getattr(request, subject),
            status=request.status,
            page=request.page,
        )

    async def LookupVehicle(
        self, request: pb.LookupVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        return await self.views.lookup_vehicle(request)

    async def LookupLicence(
        self, request: pb.LookupLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        return await self.views.lookup_licence(request)

    async def GetViolation(
        self, request: pb.GetViolationRequest, context: Context
    ) -> pb.ViolationView:
        caller = await self.views.with_person(request.caller)
        return await self.views.get_violation(caller, request.violation_id)

    async def StaffGetVehicle(
        self, request: pb.StaffGetVehicleRequest, context: Context
    ) -> pb.LookupResponse:
        return await self.views.staff_get_vehicle(request)

    async def StaffGetLicence(
        self, request: pb.StaffGetLicenceRequest, context: Context
    ) -> pb.LookupResponse:
        return await self.views.staff_get_licence(request)


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_QueryServiceServicer_to_server(QueryServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["QueryService"].full_name]
