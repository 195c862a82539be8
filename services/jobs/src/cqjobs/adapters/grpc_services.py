"""The services' job entry points over gRPC: ``RunJob`` of PaymentService, FollowService and
AdjudicationService (one contract, cqtraffic.common.v1.RunJobRequest/Response), each with a
deadline. gRPC failures become ``BatchCallError``: retryable when the service was
unreachable, slow or failed inside; not when it refused the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from cqcommon.grpc_client import make_channel
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.follow.v1 import follow_pb2_grpc
from cqtraffic.payment.v1 import payment_pb2_grpc

from cqjobs.domain.catalogue import ADJUDICATION, FOLLOW, PAYMENT
from cqjobs.ports import BatchCallError, BatchRequest, BatchResult

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)

RunJob = Callable[..., Awaitable[jobs_pb2.RunJobResponse]]


def to_proto(request: BatchRequest) -> jobs_pb2.RunJobRequest:
    message = jobs_pb2.RunJobRequest(
        job=request.job,
        checkpoint=request.checkpoint,
        batch_size=request.batch_size,
        night=date_to_proto(request.night),
    )
    if request.as_of is not None:
        message.as_of.CopyFrom(timestamp_to_proto(request.as_of))
    return message


def from_proto(response: jobs_pb2.RunJobResponse) -> BatchResult:
    return BatchResult(
        items_done=response.items_done,
        checkpoint=response.checkpoint,
        done=response.done,
        errors=response.errors,
        message=response.message,
    )


class GrpcJobServices:
    """One channel per service address; ``close()`` closes them."""

    def __init__(self, addrs: Mapping[str, str], *, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.channels: dict[str, grpc.aio.Channel] = {
            name: make_channel(addr) for name, addr in addrs.items()
        }
        stubs: dict[str, Any] = {}
        if PAYMENT in self.channels:
            stubs[PAYMENT] = payment_pb2_grpc.PaymentServiceStub(self.channels[PAYMENT])
        if FOLLOW in self.channels:
            stubs[FOLLOW] = follow_pb2_grpc.FollowServiceStub(self.channels[FOLLOW])
        if ADJUDICATION in self.channels:
            stubs[ADJUDICATION] = adjudication_pb2_grpc.AdjudicationServiceStub(
                self.channels[ADJUDICATION]
            )
        self.run_job: dict[str, RunJob] = {name: stub.RunJob for name, stub in stubs.items()}

    async def run_batch(self, service: str, request: BatchRequest) -> BatchResult:
        method = self.run_job.get(service)
        if method is None:
            raise BatchCallError(f"no address for the {service} service", retryable=False)
        try:
            response = await method(to_proto(request), timeout=self.deadline_s)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise BatchCallError(
                f"{service} RunJob: {code.name} {exc.details() or ''}".strip(),
                retryable=code in RETRYABLE,
            ) from exc
        return from_proto(response)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
