"""AdjudicationService gRPC servicer: decode, call the use case, encode. Domain errors
become gRPC status through the shared interceptor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from cqcommon.errors import VIOLATION_NOT_FOUND, DomainError
from cqcommon.grpc_server import not_implemented
from cqcommon.runner import ServiceContext
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as pb_grpc

from cqadjudication.adapters.unit_of_work import PostgresUnitOfWork
from cqadjudication.domain.violations import RecordingWindow
from cqadjudication.entrypoints.mappers import (
    envelope_of,
    online_handling_to_proto,
    report_from_request,
    violation_to_proto,
)
from cqadjudication.service_layer.handling_eligibility import handling_eligibility
from cqadjudication.service_layer.record_violation import record_violation

Context = grpc.aio.ServicerContext[Any, Any]


class AdjudicationServicer(pb_grpc.AdjudicationServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.window = RecordingWindow(
            clock_skew=timedelta(seconds=ctx.settings.record_clock_skew_s),
            floor_date=ctx.settings.violation_floor_date,
        )

    def unit_of_work(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.ctx.db, envelope_of)

    async def RecordViolation(
        self, request: pb.RecordViolationRequest, context: Context
    ) -> pb.RecordViolationResponse:
        report = report_from_request(request, clock=self.ctx.clock, window=self.window)
        async with self.unit_of_work() as uow:
            result = await record_violation(uow=uow, report=report)
        return pb.RecordViolationResponse(
            violation=violation_to_proto(result.violation), created=result.created
        )

    async def GetViolation(self, request: pb.GetViolationRequest, context: Context) -> pb.Violation:
        async with self.unit_of_work() as uow:
            violation = await uow.violations.get(request.violation_id)
        if violation is None:
            raise DomainError(VIOLATION_NOT_FOUND)
        return violation_to_proto(violation)

    async def GetHandlingEligibility(
        self, request: pb.GetHandlingEligibilityRequest, context: Context
    ) -> pb.GetHandlingEligibilityResponse:
        """Record-level answers now (DOMAIN.md, R-ADJ-9); the per-person rules (R-ADJ-1..6)
        come with the handling issue and will use ``request.caller``."""
        async with self.unit_of_work() as uow:
            answers = await handling_eligibility(uow=uow, violation_ids=request.violation_ids)
        return pb.GetHandlingEligibilityResponse(
            results=[
                pb.HandlingEligibility(
                    violation_id=vid, online_handling=online_handling_to_proto(answer)
                )
                for vid, answer in answers.items()
            ]
        )

    # -- handled by the adjudication issue (self-service handling, disputes) -----------

    async def StartHandling(
        self, request: pb.StartHandlingRequest, context: Context
    ) -> pb.Handling:
        raise not_implemented("StartHandling")

    async def CompleteVerification(
        self, request: pb.CompleteVerificationRequest, context: Context
    ) -> pb.Handling:
        raise not_implemented("CompleteVerification")

    async def SubmitHandling(
        self, request: pb.SubmitHandlingRequest, context: Context
    ) -> pb.Handling:
        raise not_implemented("SubmitHandling")

    async def GetHandling(self, request: pb.GetHandlingRequest, context: Context) -> pb.Handling:
        raise not_implemented("GetHandling")

    async def DisputeViolation(
        self, request: pb.DisputeViolationRequest, context: Context
    ) -> pb.Violation:
        raise not_implemented("DisputeViolation")

    async def UndisputeViolation(
        self, request: pb.UndisputeViolationRequest, context: Context
    ) -> pb.Violation:
        raise not_implemented("UndisputeViolation")

    async def HandleAtCounter(
        self, request: pb.HandleAtCounterRequest, context: Context
    ) -> pb.Handling:
        raise not_implemented("HandleAtCounter")

    async def RecordDecision(
        self, request: pb.RecordDecisionRequest, context: Context
    ) -> pb.Violation:
        raise not_implemented("RecordDecision")

    async def ListPointsBuyingAlerts(
        self, request: pb.ListPointsBuyingAlertsRequest, context: Context
    ) -> pb.ListPointsBuyingAlertsResponse:
        raise not_implemented("ListPointsBuyingAlerts")


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_AdjudicationServiceServicer_to_server(AdjudicationServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["AdjudicationService"].full_name]
