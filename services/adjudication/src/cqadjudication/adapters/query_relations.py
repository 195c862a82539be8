"""The ``Relations`` port over the query service's ``GetRelations`` (R-Q-1 facts: which
vehicles a caller follows or proved), with the service's deadline on every call."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from cqcommon.errors import HANDLING_RELATIONS_UNAVAILABLE, DomainError
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as query
from cqtraffic.query.v1 import query_pb2_grpc as query_grpc

from cqadjudication.domain.callers import Caller

log = logging.getLogger(__name__)


class QueryRelations:
    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float) -> None:
        self.stub = query_grpc.QueryServiceStub(channel)
        self.timeout_s = timeout_s

    async def relations(self, caller: Caller, vehicle_ids: Sequence[str]) -> dict[str, str]:
        request = query.GetRelationsRequest(
            caller=common.Caller(
                user_id=caller.user_id,
                person_id=caller.person_id,
                staff_id=caller.staff_id,
                staff_role=caller.staff_role,
            ),
            vehicle_ids=list(vehicle_ids),
        )
        try:
            response = await self.stub.GetRelations(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("relations question failed: %s", exc.code())
            raise DomainError(HANDLING_RELATIONS_UNAVAILABLE) from None
        return dict(response.relations)
