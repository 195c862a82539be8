"""FollowService gRPC servicer. The contract is complete; the use cases arrive with the
issue that builds this service, so every method answers UNIMPLEMENTED (HTTP 501) for now."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.grpc_server import not_implemented
from cqcommon.runner import ServiceContext
from cqtraffic.follow.v1 import follow_pb2 as pb
from cqtraffic.follow.v1 import follow_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class FollowServiceServicer(pb_grpc.FollowServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def RequestVehicleFollow(
        self, request: pb.RequestVehicleFollowRequest, context: Context
    ) -> pb.FollowRequest:
        raise not_implemented("RequestVehicleFollow")

    async def SubmitSmsCode(self, request: pb.SubmitSmsCodeRequest, context: Context) -> pb.Follow:
        raise not_implemented("SubmitSmsCode")

    async def ListIncomingRequests(
        self, request: pb.ListIncomingRequestsRequest, context: Context
    ) -> pb.ListIncomingRequestsResponse:
        raise not_implemented("ListIncomingRequests")

    async def ApproveRequest(
        self, request: pb.DecideRequestRequest, context: Context
    ) -> pb.FollowRequest:
        raise not_implemented("ApproveRequest")

    async def DeclineRequest(
        self, request: pb.DecideRequestRequest, context: Context
    ) -> pb.FollowRequest:
        raise not_implemented("DeclineRequest")

    async def ListFollows(
        self, request: pb.ListFollowsRequest, context: Context
    ) -> pb.ListFollowsResponse:
        raise not_implemented("ListFollows")

    async def UnfollowVehicle(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        raise not_implemented("UnfollowVehicle")

    async def RevokeFollower(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        raise not_implemented("RevokeFollower")

    async def FollowLicence(self, request: pb.FollowLicenceRequest, context: Context) -> pb.Follow:
        raise not_implemented("FollowLicence")

    async def UnfollowLicence(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        raise not_implemented("UnfollowLicence")

    async def ListFollowers(
        self, request: pb.ListFollowersRequest, context: Context
    ) -> pb.ListFollowersResponse:
        raise not_implemented("ListFollowers")

    async def ListSandboxSms(
        self, request: pb.ListSandboxSmsRequest, context: Context
    ) -> pb.ListSandboxSmsResponse:
        raise not_implemented("ListSandboxSms")

    async def SeedFollow(self, request: pb.SeedFollowRequest, context: Context) -> pb.Follow:
        raise not_implemented("SeedFollow")

    async def RunJob(self, request: pb.RunJobRequest, context: Context) -> pb.RunJobResponse:
        raise not_implemented("RunJob")


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_FollowServiceServicer_to_server(FollowServiceServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["FollowService"].full_name]
