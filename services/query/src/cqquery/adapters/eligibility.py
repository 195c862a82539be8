"""R-Q-3: asks adjudication whether a caller may handle violations online.

The rules are adjudication's (GetHandlingEligibility); this adapter only asks, with a
short deadline, and turns "cannot ask" into an ``unknown`` hint with a reason code
(``cqquery.domain.online_handling``), so a violation's detail or a list never fails
because the eligibility question could not be answered. The caller's relations to the
vehicles asked about go with the question (``vehicle_relations``, marked complete by
``relations_given``), so adjudication need not ask this service back; every refusal
reason comes back untouched.
"""

from __future__ import annotations

import logging

import grpc
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.adjudication.v1 import adjudication_pb2_grpc as adj_grpc
from cqtraffic.common.v1 import types_pb2 as common

from cqquery.domain.model import Caller
from cqquery.domain.online_handling import (
    ELIGIBILITY_NOT_AVAILABLE,
    ELIGIBILITY_UNAVAILABLE,
    Reason,
)
from cqquery.domain.results import Availability, OnlineHandlingHint

log = logging.getLogger(__name__)

_AVAILABILITY: dict[int, Availability] = {
    common.OnlineHandling.AVAILABILITY_ALLOWED: "allowed",
    common.OnlineHandling.AVAILABILITY_REFUSED: "refused",
    common.OnlineHandling.AVAILABILITY_UNKNOWN: "unknown",
}


def hint_from_proto(answer: common.OnlineHandling) -> OnlineHandlingHint:
    return OnlineHandlingHint(
        availability=_AVAILABILITY.get(answer.availability, "unspecified"),
        route=answer.route,
        reason_code=answer.reason_code,
        reason_zh=answer.reason_zh,
        reason_en=answer.reason_en,
        reasons=tuple(Reason(r.code, r.zh, r.en) for r in answer.reasons),
    )


class AdjudicationEligibility:
    """``ports.Eligibility`` over adjudication's GetHandlingEligibility."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float) -> None:
        self.stub = adj_grpc.AdjudicationServiceStub(channel)
        self.timeout_s = timeout_s

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]:
        """The hint per violation id; every id gets one (``unknown`` when not answered)."""
        request = adj.GetHandlingEligibilityRequest(
            caller=common.Caller(
                user_id=caller.user_id,
                person_id=caller.person_id,
                staff_id=caller.staff_id,
                staff_role=caller.staff_role,
            ),
            violation_ids=violation_ids,
            vehicle_relations=dict(caller.vehicle_relations),
            # the map is complete even when empty (a page of vehicles the caller relates
            # to none of): adjudication need not call GetRelations back
            relations_given=True,
        )
        try:
            response = await self.stub.GetHandlingEligibility(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            not_offered = exc.code() == grpc.StatusCode.UNIMPLEMENTED
            if not not_offered:
                log.warning("eligibility question failed: %s", exc.code())
            hint = OnlineHandlingHint.unknown(
                ELIGIBILITY_NOT_AVAILABLE if not_offered else ELIGIBILITY_UNAVAILABLE
            )
            return dict.fromkeys(violation_ids, hint)
        answers = {r.violation_id: hint_from_proto(r.online_handling) for r in response.results}
        missing = OnlineHandlingHint.unknown(ELIGIBILITY_UNAVAILABLE)
        return {vid: answers.get(vid, missing) for vid in violation_ids}
