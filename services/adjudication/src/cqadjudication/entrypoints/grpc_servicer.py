"""AdjudicationService gRPC servicer: decode, call the use case, encode. Domain errors
become gRPC status through the shared interceptor."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.db import uuid_or_nil
from cqcommon.errors import VIOLATION_NOT_FOUND, DomainError
from cqcommon.grpc_server import not_implemented
from cqcommon.protomap import (
    PROCEDURE_NAMES,
    SOURCE_NAMES,
    date_from_proto,
    plate_type_from_proto,
    timestamp_from_proto,
)
from cqcommon.runner import ServiceContext
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as pb_grpc

from cqadjudication.adapters.postgres_violations import PostgresViolationRepository
from cqadjudication.domain.violations import validate_report
from cqadjudication.mappers import violation_to_proto
from cqadjudication.service_layer.record_violation import record_violation

Context = grpc.aio.ServicerContext[Any, Any]


class AdjudicationServicer(pb_grpc.AdjudicationServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def RecordViolation(
        self, request: pb.RecordViolationRequest, context: Context
    ) -> pb.RecordViolationResponse:
        plate_type = plate_type_from_proto(request.plate_type)
        report = validate_report(
            source_system=request.source_system,
            source_record_id=request.source_record_id,
            plate_type=plate_type.value if plate_type else "",
            plate_number=request.plate_number,
            licence_no=request.licence_no or None,
            violation_code=request.violation_code,
            occurred_at=timestamp_from_proto(request.occurred_at),
            place=request.place,
            fine_fen=request.fine_fen,
            source=SOURCE_NAMES.get(request.source, ""),
            procedure=PROCEDURE_NAMES.get(request.procedure, ""),
            decision_no=request.decision_no or None,
            decision_date=date_from_proto(request.decision_date),
        )
        async with self.ctx.db.unit_of_work() as uow:
            result = await record_violation(
                uow=uow, repositories=PostgresViolationRepository, report=report
            )
        return pb.RecordViolationResponse(
            violation=violation_to_proto(result.violation), created=result.created
        )

    async def GetViolation(self, request: pb.GetViolationRequest, context: Context) -> pb.Violation:
        async with self.ctx.db.connection() as conn:
            violation = await PostgresViolationRepository(conn).get(
                uuid_or_nil(request.violation_id)
            )
        if violation is None:
            raise DomainError(VIOLATION_NOT_FOUND)
        return violation_to_proto(violation)

    # -- handled by the adjudication issue (self-service handling, disputes) -----------

    async def GetHandlingEligibility(
        self, request: pb.GetHandlingEligibilityRequest, context: Context
    ) -> pb.GetHandlingEligibilityResponse:
        raise not_implemented("GetHandlingEligibility")

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


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_AdjudicationServiceServicer_to_server(AdjudicationServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["AdjudicationService"].full_name]
