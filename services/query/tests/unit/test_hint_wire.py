"""R-Q-3 on the wire: a caller's copy of a shared page with their hint on each item, and
the eligibility question as adjudication receives it (relations in, every reason
back), on a fake stub: no gRPC server."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from cqcommon import errors
from cqquery.adapters.eligibility import AdjudicationEligibility
from cqquery.domain.model import Caller, ViolationRow
from cqquery.domain.online_handling import (
    ELIGIBILITY_NOT_AVAILABLE,
    ELIGIBILITY_UNAVAILABLE,
    Reason,
)
from cqquery.domain.results import (
    ListPage,
    Lookup,
    OnlineHandlingHint,
    PageItem,
    violation_shown,
)
from cqquery.entrypoints.mappers import ProtoPageRenderer, list_page_to_proto, lookup_to_proto
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common

AVAILABILITY = common.OnlineHandling
OWN_VEHICLE = "3f1e0c8a-7d7b-4a55-9a8e-000000000001"
LENT_VEHICLE = "3f1e0c8a-7d7b-4a55-9a8e-000000000002"
POINTS = Reason("POINTS_OVER_LIMIT", "记分将超过12分。", "Points would exceed 12.")
AB = Reason("LICENCE_CLASS_AB", "A/B 类驾驶证不能在线处理记分违法。", "A/B licences cannot.")


def row(n: int, vehicle_id: str) -> ViolationRow:
    return ViolationRow(
        violation_id=f"vio-{n}",
        vehicle_id=vehicle_id,
        plate_type="02",
        plate_number="渝A12345",
        licence_id=None,
        violation_code="1345",
        description_zh="超速",
        occurred_at=datetime(2026, 11, n, 1, 0, tzinfo=UTC),
        place="重庆市渝中区",
        fine_fen=20_000,
        points=3,
        source="non_site",
        procedure="simple",
        status="unhandled",
        decision_no=None,
        decision_date=None,
        disputed=False,
    )


def rendered_page() -> bytes:
    today = date(2026, 11, 21)
    shown = [
        violation_shown(row(n, v), today=today)
        for n, v in ((1, OWN_VEHICLE), (2, LENT_VEHICLE), (3, OWN_VEHICLE))
    ]
    return ProtoPageRenderer().render(shown)


def test_r_q_3_a_callers_copy_of_a_page_carries_their_hint_on_each_item() -> None:
    """Each item gets its own hint with every reason; an item without one stays without;
    the shared page itself is untouched (it is shared by every caller)."""
    renderer = ProtoPageRenderer()
    body = rendered_page()
    assert [(i.violation_id, i.vehicle_id) for i in renderer.items(body)] == [
        ("vio-1", OWN_VEHICLE),
        ("vio-2", LENT_VEHICLE),
        ("vio-3", OWN_VEHICLE),
    ]
    refused = OnlineHandlingHint(
        "refused", "counter", POINTS.code, POINTS.zh, POINTS.en, (POINTS, AB)
    )
    own = renderer.with_hints(
        body, {"vio-2": refused, "vio-1": OnlineHandlingHint("allowed", "handler")}
    )
    response = list_page_to_proto(ListPage(own, "cursor"))
    assert response.next_cursor == "cursor"
    first, second, third = response.violations
    assert first.online_handling.availability == AVAILABILITY.AVAILABILITY_ALLOWED
    assert first.online_handling.route == "handler"
    assert second.online_handling.availability == AVAILABILITY.AVAILABILITY_REFUSED
    assert second.online_handling.reason_code == "POINTS_OVER_LIMIT"
    assert [(r.code, r.zh, r.en) for r in second.online_handling.reasons] == [
        (POINTS.code, POINTS.zh, POINTS.en),
        (AB.code, AB.zh, AB.en),
    ]
    assert not third.HasField("online_handling")
    assert (first.place, second.fine_fen) == ("重庆市渝中区", 20_000), "the page itself is intact"

    shared = list_page_to_proto(ListPage(body, ""))
    assert not any(v.HasField("online_handling") for v in shared.violations)
    looked_up = lookup_to_proto(Lookup(None, None, ListPage(own, "c")))
    assert [v.online_handling.availability for v in looked_up.violations][:2] == [
        AVAILABILITY.AVAILABILITY_ALLOWED,
        AVAILABILITY.AVAILABILITY_REFUSED,
    ]


# -- the question to adjudication --------------------------------------------------------------
@dataclass
class FakeStub:
    """GetHandlingEligibility as adjudication answers it (or fails with ``error``)."""

    answers: dict[str, common.OnlineHandling] = field(default_factory=dict)
    error: grpc.StatusCode | None = None
    requests: list[adj.GetHandlingEligibilityRequest] = field(default_factory=list)

    async def GetHandlingEligibility(  # noqa: N802
        self,
        request: adj.GetHandlingEligibilityRequest,
        timeout: float,  # noqa: ASYNC109
    ) -> adj.GetHandlingEligibilityResponse:
        self.requests.append(request)
        if self.error is not None:
            raise grpc.aio.AioRpcError(
                self.error, grpc.aio.Metadata(), grpc.aio.Metadata(), "fake", None
            )
        return adj.GetHandlingEligibilityResponse(
            results=[
                adj.HandlingEligibility(violation_id=vid, online_handling=answer)
                for vid, answer in self.answers.items()
                if vid in request.violation_ids
            ]
        )


def adapter(stub: FakeStub) -> AdjudicationEligibility:
    eligibility = AdjudicationEligibility(grpc.aio.insecure_channel("127.0.0.1:9"), timeout_s=0.5)
    eligibility.stub = stub  # type: ignore[assignment]
    return eligibility


CALLER = Caller(user_id="2088000000000001", person_id="p-1")


async def test_r_q_3_the_question_carries_relations_and_every_reason_comes_back() -> None:
    stub = FakeStub(
        answers={
            "vio-1": common.OnlineHandling(
                availability=AVAILABILITY.AVAILABILITY_REFUSED,
                route="counter",
                reason_code=POINTS.code,
                reason_zh=POINTS.zh,
                reason_en=POINTS.en,
                reasons=[
                    common.Reason(code=POINTS.code, zh=POINTS.zh, en=POINTS.en),
                    common.Reason(code=AB.code, zh=AB.zh, en=AB.en),
                ],
            )
        }
    )
    asker = CALLER.asking_about({OWN_VEHICLE: "own", LENT_VEHICLE: "followed"})
    hints = await adapter(stub).online_handling(asker, ["vio-1", "vio-2"])
    (request,) = stub.requests
    assert dict(request.vehicle_relations) == {OWN_VEHICLE: "own", LENT_VEHICLE: "followed"}
    assert request.relations_given
    assert (request.caller.user_id, request.caller.person_id) == (CALLER.user_id, "p-1")
    assert list(request.violation_ids) == ["vio-1", "vio-2"]
    assert hints["vio-1"] == OnlineHandlingHint(
        "refused", "counter", POINTS.code, POINTS.zh, POINTS.en, (POINTS, AB)
    )
    # an id adjudication left out is unknown, which is not kept
    assert hints["vio-2"] == OnlineHandlingHint.unknown(ELIGIBILITY_UNAVAILABLE)
    assert hints["vio-1"].definite and not hints["vio-2"].definite


async def test_r_q_3_relations_given_even_when_the_caller_relates_to_no_vehicle() -> None:
    """An empty relation map is still complete (relations_given), so adjudication does not
    ask this service back about a page of vehicles the caller relates to none of."""
    stub = FakeStub(answers={})
    await adapter(stub).online_handling(CALLER.asking_about({}), ["vio-1"])
    (request,) = stub.requests
    assert dict(request.vehicle_relations) == {}
    assert request.relations_given


async def test_r_q_3_a_failed_question_is_unknown_for_every_id_never_an_error() -> None:
    for code, reason in (
        (grpc.StatusCode.DEADLINE_EXCEEDED, ELIGIBILITY_UNAVAILABLE),
        (grpc.StatusCode.UNAVAILABLE, ELIGIBILITY_UNAVAILABLE),
        (grpc.StatusCode.UNIMPLEMENTED, ELIGIBILITY_NOT_AVAILABLE),
    ):
        hints = await adapter(FakeStub(error=code)).online_handling(CALLER, ["vio-1", "vio-2"])
        expected: Any = OnlineHandlingHint.unknown(reason)
        assert hints == {"vio-1": expected, "vio-2": expected}, code
        assert expected.reasons == (reason,) and not expected.definite


async def test_r_q_3_the_unknown_reasons_are_the_error_tables_entries() -> None:
    """The reasons the query service gives itself have one source of text, the error table
    (``cqcommon.errors``), like adjudication's refusal reasons."""
    for code, spec in (
        (grpc.StatusCode.UNAVAILABLE, errors.ELIGIBILITY_UNAVAILABLE),
        (grpc.StatusCode.UNIMPLEMENTED, errors.ELIGIBILITY_NOT_AVAILABLE),
    ):
        hints = await adapter(FakeStub(error=code)).online_handling(CALLER, ["vio-1"])
        (reason,) = hints["vio-1"].reasons
        assert errors.CATALOGUE[reason.code] is spec, code
        assert (reason.zh, reason.en) == (spec.message_zh, spec.message_en)
        assert spec.kind is errors.ErrorKind.UNAVAILABLE


@pytest.mark.parametrize("status", ["unhandled", "handled_unpaid", "paid"])
@pytest.mark.parametrize("disputed", [False, True])
def test_r_q_3_a_rendered_pages_items_carry_status_and_dispute(status: str, disputed: bool) -> None:
    """What the list needs to answer a decided item's hint from its record, read back from
    the shared page's wire form."""
    shown = violation_shown(
        replace(row(1, OWN_VEHICLE), status=status, disputed=disputed), today=date(2026, 11, 21)
    )
    (item,) = ProtoPageRenderer().items(ProtoPageRenderer().render([shown]))
    assert item == PageItem("vio-1", OWN_VEHICLE, status, disputed)
