"""PaymentService gRPC servicer. The contract is complete; the use cases arrive with the
issue that builds this service, so every method answers UNIMPLEMENTED (HTTP 501) for now."""

from __future__ import annotations

from typing import Any

import grpc
from cqcommon.grpc_server import not_implemented
from cqcommon.runner import ServiceContext
from cqtraffic.payment.v1 import payment_pb2 as pb
from cqtraffic.payment.v1 import payment_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class PaymentServiceServicer(pb_grpc.PaymentServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def GetDecision(
        self, request: pb.GetDecisionRequest, context: Context
    ) -> pb.PayableDecision:
        raise not_implemented("GetDecision")

    async def CreatePayment(
        self, request: pb.CreatePaymentRequest, context: Context
    ) -> pb.CreatePaymentResponse:
        raise not_implemented("CreatePayment")

    async def CreateCounterPayment(
        self, request: pb.CreateCounterPaymentRequest, context: Context
    ) -> pb.CreatePaymentResponse:
        raise not_implemented("CreateCounterPayment")

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        raise not_implemented("GetPayment")

    async def RecordProviderNotification(
        self, request: pb.ProviderNotificationRequest, context: Context
    ) -> pb.ProviderNotificationResponse:
        raise not_implemented("RecordProviderNotification")

    async def FileFeedback(
        self, request: pb.FileFeedbackRequest, context: Context
    ) -> pb.FileFeedbackResponse:
        raise not_implemented("FileFeedback")

    async def ListFeedback(
        self, request: pb.ListFeedbackRequest, context: Context
    ) -> pb.ListFeedbackResponse:
        raise not_implemented("ListFeedback")

    async def RunJob(self, request: pb.RunJobRequest, context: Context) -> pb.RunJobResponse:
        raise not_implemented("RunJob")

    async def ListRefunds(
        self, request: pb.ListRefundsRequest, context: Context
    ) -> pb.ListRefundsResponse:
        raise not_implemented("ListRefunds")

    async def ApproveRefund(self, request: pb.ApproveRefundRequest, context: Context) -> pb.Refund:
        raise not_implemented("ApproveRefund")

    async def GetReceipt(self, request: pb.GetReceiptRequest, context: Context) -> pb.Document:
        raise not_implemented("GetReceipt")

    async def GetReconciliation(
        self, request: pb.GetReconciliationRequest, context: Context
    ) -> pb.GetReconciliationResponse:
        raise not_implemented("GetReconciliation")


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_PaymentServiceServicer_to_server(PaymentServiceServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["PaymentService"].full_name]
