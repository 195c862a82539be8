"""FollowService gRPC servicer: decode, call the use case, encode. Domain errors become gRPC
status through the shared interceptor.

The SMS ports come from the settings (``bootstrap.build_deps``: codes in Redis, the
recording or Alibaba Cloud sender, the sandbox outbox); tests may inject any of them
through ``register``.
"""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.protomap import run_job_as_of, run_job_response
from cqcommon.runner import ServiceContext
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.follow.v1 import follow_pb2 as pb
from cqtraffic.follow.v1 import follow_pb2_grpc as pb_grpc

from cqfollow.bootstrap import build_deps
from cqfollow.entrypoints.mappers import (
    caller_from_proto,
    ended_to_proto,
    follow_to_proto,
    follower_to_proto,
    follows_to_proto,
    plate_type_text,
    request_to_proto,
    sandbox_sms_to_proto,
)
from cqfollow.ports import SmsCodes, SmsOutbox, SmsSender
from cqfollow.service_layer.follows import (
    follow_licence,
    list_followers,
    list_follows,
    revoke_follower,
    unfollow_licence,
    unfollow_vehicle,
)
from cqfollow.service_layer.jobs import run_job
from cqfollow.service_layer.requests import (
    approve_request,
    decline_request,
    list_incoming_requests,
    request_vehicle_follow,
    submit_sms_code,
)
from cqfollow.service_layer.sandbox import list_sandbox_sms, seed_follow

Context = grpc.aio.ServicerContext[Any, Any]


class FollowServiceServicer(pb_grpc.FollowServiceServicer):
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        sms_codes: SmsCodes | None = None,
        sms_sender: SmsSender | None = None,
        sms_outbox: SmsOutbox | None = None,
    ) -> None:
        self.ctx = ctx
        self.deps = build_deps(
            ctx, sms_codes=sms_codes, sms_sender=sms_sender, sms_outbox=sms_outbox
        )

    async def RequestVehicleFollow(
        self, request: pb.RequestVehicleFollowRequest, context: Context
    ) -> pb.FollowRequest:
        view = await request_vehicle_follow(
            self.deps,
            caller=caller_from_proto(request.caller),
            plate_type=plate_type_text(request.plate_type),
            plate_number=request.plate_number,
            vin=request.vin,
        )
        return request_to_proto(view)

    async def SubmitSmsCode(self, request: pb.SubmitSmsCodeRequest, context: Context) -> pb.Follow:
        view = await submit_sms_code(
            self.deps,
            caller=caller_from_proto(request.caller),
            request_id=request.request_id,
            code=request.code,
        )
        return follow_to_proto(view)

    async def ListIncomingRequests(
        self, request: pb.ListIncomingRequestsRequest, context: Context
    ) -> pb.ListIncomingRequestsResponse:
        views = await list_incoming_requests(self.deps, caller=caller_from_proto(request.caller))
        return pb.ListIncomingRequestsResponse(requests=[request_to_proto(v) for v in views])

    async def ApproveRequest(
        self, request: pb.DecideRequestRequest, context: Context
    ) -> pb.FollowRequest:
        view = await approve_request(
            self.deps, caller=caller_from_proto(request.caller), request_id=request.request_id
        )
        return request_to_proto(view)

    async def DeclineRequest(
        self, request: pb.DecideRequestRequest, context: Context
    ) -> pb.FollowRequest:
        view = await decline_request(
            self.deps, caller=caller_from_proto(request.caller), request_id=request.request_id
        )
        return request_to_proto(view)

    async def ListFollows(
        self, request: pb.ListFollowsRequest, context: Context
    ) -> pb.ListFollowsResponse:
        overview = await list_follows(self.deps, caller=caller_from_proto(request.caller))
        return follows_to_proto(overview)

    async def ListFollowers(
        self, request: pb.ListFollowersRequest, context: Context
    ) -> pb.ListFollowersResponse:
        views = await list_followers(self.deps, caller=caller_from_proto(request.caller))
        return pb.ListFollowersResponse(followers=[follower_to_proto(v) for v in views])

    async def UnfollowVehicle(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        ended = await unfollow_vehicle(
            self.deps, caller=caller_from_proto(request.caller), follow_id=request.follow_id
        )
        return ended_to_proto(ended)

    async def RevokeFollower(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        ended = await revoke_follower(
            self.deps, caller=caller_from_proto(request.caller), follow_id=request.follow_id
        )
        return ended_to_proto(ended)

    async def FollowLicence(self, request: pb.FollowLicenceRequest, context: Context) -> pb.Follow:
        view = await follow_licence(
            self.deps,
            caller=caller_from_proto(request.caller),
            name=request.name,
            licence_no=request.licence_no,
            file_no=request.file_no,
        )
        return follow_to_proto(view)

    async def UnfollowLicence(
        self, request: pb.EndFollowRequest, context: Context
    ) -> pb.EndFollowResponse:
        ended = await unfollow_licence(
            self.deps, caller=caller_from_proto(request.caller), follow_id=request.follow_id
        )
        return ended_to_proto(ended)

    async def ListSandboxSms(
        self, request: pb.ListSandboxSmsRequest, context: Context
    ) -> pb.ListSandboxSmsResponse:
        messages = await list_sandbox_sms(
            self.deps,
            caller=caller_from_proto(request.caller),
            phone=request.phone,
            limit=request.limit,
        )
        return sandbox_sms_to_proto(messages)

    async def SeedFollow(self, request: pb.SeedFollowRequest, context: Context) -> pb.Follow:
        view = await seed_follow(
            self.deps,
            caller=caller_from_proto(request.caller),
            follower_person_id=request.follower_person_id,
            vehicle_id=request.vehicle_id,
        )
        return follow_to_proto(view)

    async def RunJob(
        self, request: jobs_pb2.RunJobRequest, context: Context
    ) -> jobs_pb2.RunJobResponse:
        batch = await run_job(
            self.deps,
            job=request.job,
            checkpoint=request.checkpoint,
            batch_size=request.batch_size,
            as_of=run_job_as_of(request),
        )
        return run_job_response(batch)


def register(
    server: grpc.aio.Server,
    ctx: ServiceContext,
    *,
    sms_codes: SmsCodes | None = None,
    sms_sender: SmsSender | None = None,
    sms_outbox: SmsOutbox | None = None,
) -> list[str]:
    servicer = FollowServiceServicer(
        ctx, sms_codes=sms_codes, sms_sender=sms_sender, sms_outbox=sms_outbox
    )
    pb_grpc.add_FollowServiceServicer_to_server(servicer, server)
    return [pb.DESCRIPTOR.services_by_name["FollowService"].full_name]
