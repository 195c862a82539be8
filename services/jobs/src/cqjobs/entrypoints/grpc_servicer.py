"""JobsService: the run records for staff (``GET /internal/v1/jobs`` through the gateway);
nobody but cqjobs reads the jobs schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqcommon.runner import ServiceContext
from cqtraffic.jobs.v1 import jobs_pb2 as pb
from cqtraffic.jobs.v1 import jobs_pb2_grpc as pb_grpc

from cqjobs.adapters.postgres_runs import PostgresRunStore
from cqjobs.domain.runs import RunRecord
from cqjobs.ports import RunStore
from cqjobs.service_layer.runs import list_runs

Context = grpc.aio.ServicerContext[Any, Any]


def run_to_proto(run: RunRecord) -> pb.JobRun:
    return pb.JobRun(
        run_id=run.run_id,
        job=run.job,
        service=run.service,
        night=date_to_proto(run.night),
        started_at=timestamp_to_proto(run.started_at),
        ended_at=timestamp_to_proto(run.ended_at),
        state=run.state.value,
        items_done=run.items_done,
        errors=run.errors,
        batches=run.batches,
        checkpoint=run.checkpoint,
        message=run.message,
        forced=run.forced,
        resumed_from=run.resumed_from or "",
    )


class JobsServiceServicer(pb_grpc.JobsServiceServicer):
    def __init__(self, store: RunStore) -> None:
        self.store = store

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        runs = await list_runs(
            self.store, staff_id=request.caller.staff_id, job=request.job, limit=request.limit
        )
        return pb.ListRunsResponse(runs=[run_to_proto(r) for r in runs])


def register(server: grpc.aio.Server, ctx: ServiceContext) -> Sequence[str]:
    pb_grpc.add_JobsServiceServicer_to_server(JobsServiceServicer(PostgresRunStore(ctx.db)), server)
    return [pb.DESCRIPTOR.services_by_name["JobsService"].full_name]
