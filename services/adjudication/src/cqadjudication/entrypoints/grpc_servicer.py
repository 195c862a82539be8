"""AdjudicationService gRPC servicer: decode, call the use case, encode. Domain errors
become gRPC status through the shared interceptor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import grpc
import httpx
from cqcommon.errors import VIOLATION_NOT_FOUND, DomainError
from cqcommon.protomap import (
    run_job_as_of,
    run_job_response,
    timestamp_to_proto,
)
from cqcommon.runner import ServiceContext
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as pb_grpc
from cqtraffic.common.v1 import jobs_pb2

from cqadjudication.adapters.face_counter import CounterFaceVerifier
from cqadjudication.adapters.face_verifiers import face_verifier_for
from cqadjudication.adapters.notice_pdf import PdfNoticeRenderer
from cqadjudication.adapters.query_relations import QueryRelations
from cqadjudication.adapters.unit_of_work import PostgresUnitOfWork
from cqadjudication.domain.violations import RecordingWindow
from cqadjudication.entrypoints.mappers import (
    alert_to_proto,
    caller_from_proto,
    decision_date_from_proto,
    envelope_of,
    given_relations_from_request,
    handling_to_proto,
    online_handling_to_proto,
    report_from_request,
    violation_to_proto,
)
from cqadjudication.ports import FaceVerifier, NoticeRenderer, Relations
from cqadjudication.service_layer.alerts import list_points_buying_alerts
from cqadjudication.service_layer.config import HandlingConfig
from cqadjudication.service_layer.counter import handle_at_counter, record_decision
from cqadjudication.service_layer.disputes import dispute_violation, undispute_violation
from cqadjudication.service_layer.handling_eligibility import handling_eligibility
from cqadjudication.service_layer.handlings import (
    complete_verification,
    get_handling,
    start_handling,
    submit_handling,
)
from cqadjudication.service_layer.jobs import run_job
from cqadjudication.service_layer.notices import get_decision_notice
from cqadjudication.service_layer.record_violation import record_violation

Context = grpc.aio.ServicerContext[Any, Any]


class AdjudicationServicer(pb_grpc.AdjudicationServiceServicer):
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        online_verifier: FaceVerifier | None = None,
        relations: Relations | None = None,
        notice_renderer: NoticeRenderer | None = None,
    ) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.window = RecordingWindow(
            clock_skew=timedelta(seconds=settings.record_clock_skew_s),
            floor_date=settings.violation_floor_date,
        )
        self.config = HandlingConfig.from_settings(settings)
        # R-ADJ-8 / R-SBX-1: sandbox in sandbox mode, else Alipay; counter for the desk.
        self.online_verifier = online_verifier or face_verifier_for(settings, httpx.AsyncClient())
        self.counter_verifier: FaceVerifier = CounterFaceVerifier()
        self.verifiers: Mapping[str, FaceVerifier] = {
            self.online_verifier.name: self.online_verifier,
            self.counter_verifier.name: self.counter_verifier,
        }
        self.relations: Relations = relations or QueryRelations(
            ctx.channel(settings.query_service_addr), timeout_s=settings.grpc_deadline_s
        )
        self.notice_renderer: NoticeRenderer = notice_renderer or PdfNoticeRenderer()

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
        async with self.unit_of_work().reading() as uow:
            violation = await uow.violations.get(request.violation_id)
        if violation is None:
            raise DomainError(VIOLATION_NOT_FOUND)
        return violation_to_proto(violation)

    async def GetHandlingEligibility(
        self, request: pb.GetHandlingEligibilityRequest, context: Context
    ) -> pb.GetHandlingEligibilityResponse:
        async with self.unit_of_work().reading() as uow:
            answers = await handling_eligibility(
                uow=uow,
                relations=self.relations,
                caller=caller_from_proto(request.caller),
                violation_ids=request.violation_ids,
                given_relations=given_relations_from_request(request),
                rules=self.config.rules,
                now=self.ctx.clock.now(),
            )
        return pb.GetHandlingEligibilityResponse(
            results=[
                pb.HandlingEligibility(
                    violation_id=vid, online_handling=online_handling_to_proto(answer)
                )
                for vid, answer in answers.items()
            ]
        )

    async def StartHandling(
        self, request: pb.StartHandlingRequest, context: Context
    ) -> pb.Handling:
        now = self.ctx.clock.now()
        async with self.unit_of_work() as uow:
            handling = await start_handling(
                uow=uow,
                relations=self.relations,
                verifier=self.online_verifier,
                caller=caller_from_proto(request.caller),
                violation_id=request.violation_id,
                config=self.config,
                now=now,
            )
        return handling_to_proto(handling, now=now)

    async def CompleteVerification(
        self, request: pb.CompleteVerificationRequest, context: Context
    ) -> pb.Handling:
        now = self.ctx.clock.now()
        async with self.unit_of_work() as uow:
            handling = await complete_verification(
                uow=uow,
                verifiers=self.verifiers,
                caller=caller_from_proto(request.caller),
                handling_id=request.handling_id,
                step=request.step,
                config=self.config,
                now=now,
            )
        return handling_to_proto(handling, now=now)

    async def SubmitHandling(
        self, request: pb.SubmitHandlingRequest, context: Context
    ) -> pb.Handling:
        now = self.ctx.clock.now()
        async with self.unit_of_work() as uow:
            handling = await submit_handling(
                uow=uow,
                caller=caller_from_proto(request.caller),
                handling_id=request.handling_id,
                config=self.config,
                now=now,
            )
        return handling_to_proto(handling, now=now)

    async def GetHandling(self, request: pb.GetHandlingRequest, context: Context) -> pb.Handling:
        now = self.ctx.clock.now()
        async with self.unit_of_work().reading() as uow:
            handling = await get_handling(
                uow=uow, caller=caller_from_proto(request.caller), handling_id=request.handling_id
            )
        return handling_to_proto(handling, now=now)

    async def DisputeViolation(
        self, request: pb.DisputeViolationRequest, context: Context
    ) -> pb.Violation:
        async with self.unit_of_work() as uow:
            violation = await dispute_violation(
                uow=uow,
                caller=caller_from_proto(request.caller),
                violation_id=request.violation_id,
                reason=request.reason,
            )
        return violation_to_proto(violation)

    async def UndisputeViolation(
        self, request: pb.UndisputeViolationRequest, context: Context
    ) -> pb.Violation:
        async with self.unit_of_work() as uow:
            violation = await undispute_violation(
                uow=uow, caller=caller_from_proto(request.caller), violation_id=request.violation_id
            )
        return violation_to_proto(violation)

    async def HandleAtCounter(
        self, request: pb.HandleAtCounterRequest, context: Context
    ) -> pb.Handling:
        now = self.ctx.clock.now()
        async with self.unit_of_work() as uow:
            handling = await handle_at_counter(
                uow=uow,
                verifier=self.counter_verifier,
                caller=caller_from_proto(request.caller),
                violation_id=request.violation_id,
                licence_no=request.handler_licence_no,
                config=self.config,
                now=now,
            )
        return handling_to_proto(handling, now=now)

    async def RecordDecision(
        self, request: pb.RecordDecisionRequest, context: Context
    ) -> pb.Violation:
        async with self.unit_of_work() as uow:
            violation = await record_decision(
                uow=uow,
                caller=caller_from_proto(request.caller),
                violation_id=request.violation_id,
                decision_no=request.decision_no,
                decision_date=decision_date_from_proto(request.decision_date),
                licence_no=request.licence_no,
                now=self.ctx.clock.now(),
            )
        return violation_to_proto(violation)

    async def ListPointsBuyingAlerts(
        self, request: pb.ListPointsBuyingAlertsRequest, context: Context
    ) -> pb.ListPointsBuyingAlertsResponse:
        async with self.unit_of_work().reading() as uow:
            page = await list_points_buying_alerts(
                uow=uow,
                caller=caller_from_proto(request.caller),
                page_size=request.page.page_size,
                cursor=request.page.cursor,
            )
        return pb.ListPointsBuyingAlertsResponse(
            alerts=[alert_to_proto(a) for a in page.alerts], next_cursor=page.next_cursor
        )

    async def GetDecisionNotice(
        self, request: pb.GetDecisionNoticeRequest, context: Context
    ) -> pb.DecisionNotice:
        document = await get_decision_notice(
            uows=self.unit_of_work,
            renderer=self.notice_renderer,
            caller=caller_from_proto(request.caller),
            decision_no=request.decision_no,
            now=self.ctx.clock.now(),
        )
        return pb.DecisionNotice(
            decision_no=document.notice.decision_no,
            filename=document.filename,
            content_type=document.content_type,
            content=document.notice.content,
            generated_at=timestamp_to_proto(document.notice.generated_at),
        )

    async def RunJob(
        self, request: jobs_pb2.RunJobRequest, context: Context
    ) -> jobs_pb2.RunJobResponse:
        # the runner's "now" (--now in tests and drills), else this service's clock
        now = run_job_as_of(request) or self.ctx.clock.now()
        batch = await run_job(
            uows=self.unit_of_work,
            renderer=self.notice_renderer,
            job=request.job,
            checkpoint=request.checkpoint,
            batch_size=request.batch_size,
            now=now,
            points_limit=self.config.rules.points_limit,
        )
        return run_job_response(batch)


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    pb_grpc.add_AdjudicationServiceServicer_to_server(AdjudicationServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["AdjudicationService"].full_name]
