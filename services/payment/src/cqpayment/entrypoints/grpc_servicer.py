"""PaymentService gRPC servicer: decode, call the use case, encode. Domain errors become
gRPC status through the shared interceptor.

The provider is the Alipay trade adapter built from settings (``trade_provider_for``: the
real Alipay, or in sandbox mode and tests the fake Alipay server the settings point at), on
one ``httpx.AsyncClient`` per process, closed when the server stops; tests may inject any
``TradeProvider`` (and receipt renderer, and SMS sender) through ``register``. The SMS
sender (R-JOB-6's overdue notices) is the one the settings name (``cqcommon.sms.senders``:
the recording outbox in tests and the sandbox, Alibaba Cloud SMS in production).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
from cqcommon.metrics import CountingSmsSender
from cqcommon.protomap import run_job_as_of, run_job_response
from cqcommon.runner import ServiceContext
from cqcommon.sms import SmsSender
from cqcommon.sms.senders import sms_sender_for
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.payment.v1 import payment_pb2 as pb
from cqtraffic.payment.v1 import payment_pb2_grpc as pb_grpc

from cqpayment.adapters.providers import trade_provider_for
from cqpayment.adapters.receipt_pdf import PdfReceiptRenderer
from cqpayment.adapters.unit_of_work import PostgresUnitOfWork
from cqpayment.entrypoints.mappers import (
    caller_from_proto,
    create_response,
    day_from_proto,
    decision_to_proto,
    encode_payment,
    envelope_of,
    feedback_to_proto,
    payment_to_proto,
    reconciliation_to_proto,
    refund_to_proto,
)
from cqpayment.ports import ReceiptRenderer, TradeProvider
from cqpayment.service_layer.config import Deps, PaymentConfig
from cqpayment.service_layer.decisions import get_decision
from cqpayment.service_layer.feedback import file_feedback, list_feedback
from cqpayment.service_layer.jobs import run_job
from cqpayment.service_layer.notifications import record_provider_notification
from cqpayment.service_layer.payments import create_counter_payment, create_payment, get_payment
from cqpayment.service_layer.receipts import get_receipt
from cqpayment.service_layer.reconciliation import get_reconciliation
from cqpayment.service_layer.refunds import approve_refund, list_refunds

Context = grpc.aio.ServicerContext[Any, Any]


class PaymentServiceServicer(pb_grpc.PaymentServiceServicer):
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        provider: TradeProvider | None = None,
        renderer: ReceiptRenderer | None = None,
        sms_sender: SmsSender | None = None,
    ) -> None:
        self.ctx = ctx
        #: the process's one HTTP client for the provider (None when one was injected)
        self.http: httpx.AsyncClient | None = None
        #: the task that closes ``http`` when the server stops (see ``register``)
        self.closing: asyncio.Task[None] | None = None
        if provider is None:
            self.http = httpx.AsyncClient()
            provider = trade_provider_for(ctx.settings, self.http)
        self.deps = Deps(
            uows=self.unit_of_work,
            provider=provider,
            clock=ctx.clock,
            config=PaymentConfig.from_settings(ctx.settings),
            sms=CountingSmsSender(
                sms_sender or sms_sender_for(ctx.settings, ctx.redis, ctx.clock),
                service="payment",
                purpose="overdue_notice",
            ),
        )
        self.renderer: ReceiptRenderer = renderer or PdfReceiptRenderer()

    def unit_of_work(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.ctx.db, envelope_of)

    async def GetDecision(
        self, request: pb.GetDecisionRequest, context: Context
    ) -> pb.PayableDecision:
        view = await get_decision(
            self.deps, caller=caller_from_proto(request.caller), decision_no=request.decision_no
        )
        return decision_to_proto(view)

    async def CreatePayment(
        self, request: pb.CreatePaymentRequest, context: Context
    ) -> pb.CreatePaymentResponse:
        result = await create_payment(
            self.deps,
            encode=encode_payment,
            caller=caller_from_proto(request.caller),
            decision_no=request.decision_no,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
        )
        return create_response(result.response, replayed=result.replayed)

    async def CreateCounterPayment(
        self, request: pb.CreateCounterPaymentRequest, context: Context
    ) -> pb.CreatePaymentResponse:
        result = await create_counter_payment(
            self.deps,
            encode=encode_payment,
            caller=caller_from_proto(request.caller),
            decision_no=request.decision_no,
            method=request.method,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
        )
        return create_response(result.response, replayed=result.replayed)

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        payment = await get_payment(
            self.deps, caller=caller_from_proto(request.caller), payment_id=request.payment_id
        )
        return payment_to_proto(payment)

    async def RecordProviderNotification(
        self, request: pb.ProviderNotificationRequest, context: Context
    ) -> pb.ProviderNotificationResponse:
        result = await record_provider_notification(self.deps, params=dict(request.params))
        return pb.ProviderNotificationResponse(
            accepted=result.accepted, rejected_reason=result.rejected_reason
        )

    async def FileFeedback(
        self, request: pb.FileFeedbackRequest, context: Context
    ) -> pb.FileFeedbackResponse:
        feedback = await file_feedback(
            self.deps,
            caller=caller_from_proto(request.caller),
            payment_id=request.payment_id,
            text=request.text,
        )
        response = pb.FileFeedbackResponse(feedback_id=feedback.feedback_id)
        response.created_at.FromDatetime(feedback.created_at)
        return response

    async def ListFeedback(
        self, request: pb.ListFeedbackRequest, context: Context
    ) -> pb.ListFeedbackResponse:
        entries = await list_feedback(
            self.deps, caller=caller_from_proto(request.caller), limit=request.limit
        )
        return pb.ListFeedbackResponse(feedback=[feedback_to_proto(e) for e in entries])

    async def RunJob(
        self, request: jobs_pb2.RunJobRequest, context: Context
    ) -> jobs_pb2.RunJobResponse:
        batch = await run_job(
            self.deps,
            job=request.job,
            checkpoint=request.checkpoint,
            batch_size=request.batch_size,
            as_of=run_job_as_of(request),
            night=day_from_proto(request.night, "night"),
        )
        return run_job_response(batch)

    async def ListRefunds(
        self, request: pb.ListRefundsRequest, context: Context
    ) -> pb.ListRefundsResponse:
        refunds = await list_refunds(
            self.deps, caller=caller_from_proto(request.caller), status=request.status
        )
        return pb.ListRefundsResponse(refunds=[refund_to_proto(r) for r in refunds])

    async def ApproveRefund(self, request: pb.ApproveRefundRequest, context: Context) -> pb.Refund:
        refund = await approve_refund(
            self.deps, caller=caller_from_proto(request.caller), refund_id=request.refund_id
        )
        return refund_to_proto(refund)

    async def GetReceipt(self, request: pb.GetReceiptRequest, context: Context) -> pb.Document:
        document = await get_receipt(
            self.deps,
            renderer=self.renderer,
            caller=caller_from_proto(request.caller),
            payment_id=request.payment_id,
        )
        return pb.Document(
            filename=document.filename,
            content_type=document.content_type,
            content=document.content,
        )

    async def GetReconciliation(
        self, request: pb.GetReconciliationRequest, context: Context
    ) -> pb.GetReconciliationResponse:
        day = await get_reconciliation(
            self.deps,
            caller=caller_from_proto(request.caller),
            day=day_from_proto(request.date, "date"),
        )
        return reconciliation_to_proto(day)


def register(
    server: grpc.aio.Server,
    ctx: ServiceContext,
    *,
    provider: TradeProvider | None = None,
    renderer: ReceiptRenderer | None = None,
    sms_sender: SmsSender | None = None,
) -> list[str]:
    servicer = PaymentServiceServicer(
        ctx, provider=provider, renderer=renderer, sms_sender=sms_sender
    )
    pb_grpc.add_PaymentServiceServicer_to_server(servicer, server)
    if servicer.http is not None:
        # the runner has no shutdown hook for a servicer's resources: the provider's HTTP
        # client is closed once the gRPC server has stopped (in-flight calls drained)
        servicer.closing = asyncio.get_running_loop().create_task(
            _close_when_stopped(server, servicer.http), name="payment:close-provider-http"
        )
    return [pb.DESCRIPTOR.services_by_name["PaymentService"].full_name]


async def _close_when_stopped(server: grpc.aio.Server, http: httpx.AsyncClient) -> None:
    try:
        await server.wait_for_termination()
    finally:
        await http.aclose()
