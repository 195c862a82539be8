"""Proto <-> domain at adjudication's edge: dates that are absent vs invalid, the
online-handling answer, the event envelopes (recorded, handled, points, disputes) with the
fields the query read model reads, and the handling as its handler sees it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cqadjudication.domain.eligibility import CycleUsage, EligibilityRules, assess
from cqadjudication.domain.events import (
    PointsChanged,
    ViolationDisputed,
    ViolationHandled,
    ViolationRecorded,
    ViolationUndisputed,
)
from cqadjudication.domain.handlings import Decision, Handling, VerificationStep
from cqadjudication.domain.violations import RecordingWindow, Violation
from cqadjudication.entrypoints.mappers import (
    decision_date_from_proto,
    envelope_of,
    given_relations_from_request,
    handling_to_proto,
    online_handling_to_proto,
    report_from_request,
)
from cqadjudication.service_layer.handling_eligibility import NOT_DETERMINED
from cqcommon.clock import FixedClock
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.identifiers import PlateType
from cqcommon.protomap import timestamp_to_proto
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.adjudication.v1 import events_pb2 as events
from cqtraffic.common.v1 import types_pb2 as common

CLOCK = FixedClock(datetime(2026, 11, 20, 4, 0, tzinfo=UTC))
WINDOW = RecordingWindow(timedelta(seconds=300), date(2000, 1, 1))


def test_the_unset_date_is_absent() -> None:
    assert decision_date_from_proto(common.Date()) is None
    assert decision_date_from_proto(common.Date(year=2026, month=11, day=2)) == date(2026, 11, 2)


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(0, 5, 1), (0, 0, 1), (2026, 0, 0), (2026, 13, 1), (2026, 2, 30), (-1, 1, 1)],
)
def test_any_other_impossible_date_is_an_error(year: int, month: int, day: int) -> None:
    """R-ERR-1: a malformed decision date is refused (400), never taken as "no decision"."""
    with pytest.raises(DomainError) as err:
        decision_date_from_proto(common.Date(year=year, month=month, day=day))
    assert err.value.code == "INVALID_DECISION_DATE"


def request(**overrides: object) -> pb.RecordViolationRequest:
    fields: dict[str, object] = {
        "source_system": "camera-net",
        "source_record_id": "cam-1",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "plate_number": "渝A12345",
        "violation_code": "1345",
        "occurred_at": timestamp_to_proto(datetime(2026, 11, 1, 0, 30, tzinfo=UTC)),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": common.VIOLATION_SOURCE_NON_SITE,
        "procedure": common.PROCEDURE_SIMPLE,
    }
    return pb.RecordViolationRequest(**(fields | overrides))  # type: ignore[arg-type]


def test_a_decision_date_without_a_number_is_refused_not_dropped() -> None:
    """DOMAIN.md: a record that does not claim a decision carries neither number nor date."""
    with pytest.raises(DomainError) as err:
        report_from_request(
            request(decision_date=common.Date(year=2026, month=11, day=2)),
            clock=CLOCK,
            window=WINDOW,
        )
    assert err.value.code == "DECISION_INCOMPLETE"


def test_an_unspecified_source_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        report_from_request(request(source=0), clock=CLOCK, window=WINDOW)
    assert err.value.code == "INVALID_VIOLATION_RECORD"


def violation() -> Violation:
    return Violation(
        violation_id="7f1d4c1e-0000-4000-8000-000000000001",
        source_system="camera-net",
        source_record_id="SBX-ZW-03",
        vehicle_id="7f1d4c1e-0000-4000-8000-000000000002",
        plate_type=PlateType.SMALL_CAR,
        plate_number="渝A12345",
        licence_id=None,
        violation_code="1636",
        description_zh="机动车超过规定时速50%以上的",
        occurred_at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
        place="G50沪渝高速重庆段K1750+100",
        fine_fen=50_000,
        points=6,
        source="non_site",
        procedure="general",
        status="unhandled",
        decision_no=None,
        decision_date=None,
        disputed=False,
    )


def test_online_handling_answer_on_the_wire() -> None:
    """R-Q-3: the first reason in the single-reason fields, every reason in ``reasons``."""
    person = "7f1d4c1e-0000-4000-8000-0000000000aa"
    refused = online_handling_to_proto(
        assess(
            violation=violation(),
            owner_person_id=person,
            handler_person_id=person,
            licence=None,
            relation="owner",
            usage=CycleUsage(),
            now=CLOCK.now(),
            rules=EligibilityRules(),
        )
    )
    assert refused.availability == common.OnlineHandling.AVAILABILITY_REFUSED
    assert (refused.route, refused.reason_code) == ("counter", "GENERAL_PROCEDURE_COUNTER_ONLY")
    assert refused.reason_zh and refused.reason_en
    assert [r.code for r in refused.reasons] == ["GENERAL_PROCEDURE_COUNTER_ONLY", "NO_LICENCE"]
    assert all(r.zh and r.en for r in refused.reasons)
    unknown = online_handling_to_proto(NOT_DETERMINED)
    assert unknown.availability == common.OnlineHandling.AVAILABILITY_UNKNOWN
    assert unknown.reason_code == "ELIGIBILITY_NOT_AVAILABLE"


def test_relations_given_marks_the_sent_map_complete_even_when_empty() -> None:
    """relations_given: an empty map is "related to none" (ask nobody); without the flag an
    empty map means nothing was sent (ask the query service); a non-empty map is used."""
    complete = pb.GetHandlingEligibilityRequest(relations_given=True)
    assert given_relations_from_request(complete) == {}
    assert given_relations_from_request(pb.GetHandlingEligibilityRequest()) is None
    listed = pb.GetHandlingEligibilityRequest(vehicle_relations={"veh-1": "followed"})
    assert given_relations_from_request(listed) == {"veh-1": "followed"}
    listed.relations_given = True
    assert given_relations_from_request(listed) == {"veh-1": "followed"}


def test_violation_recorded_envelope_is_keyed_by_the_violation() -> None:
    v = violation()
    envelope = envelope_of(ViolationRecorded(v))
    assert envelope.aggregate_id == v.violation_id
    assert envelope.producer == "adjudication"
    payload = unpack(envelope)
    assert isinstance(payload, events.ViolationRecorded)
    assert (payload.violation_id, payload.fine_fen, payload.place) == (
        v.violation_id,
        50_000,
        v.place,
    )


DECISION = Decision(
    decision_no="5000000000000042",
    violation_id="7f1d4c1e-0000-4000-8000-000000000001",
    decision_date=date(2026, 11, 20),
    due_date=date(2026, 12, 5),
    fine_fen=20_000,
    points=3,
)


def test_violation_handled_carries_what_the_read_model_reads() -> None:
    """R-ADJ-7: decision no/date, due date, fine, points, handler's licence, channel; keyed
    by the violation (read by cqquery's on_violation_handled)."""
    v = violation()
    envelope = envelope_of(
        ViolationHandled(v, DECISION, "h-1", "person-1", "licence-1", channel="online")
    )
    assert envelope.aggregate_id == v.violation_id
    e = unpack(envelope)
    assert isinstance(e, events.ViolationHandled)
    assert (e.violation_id, e.handling_id, e.decision_no, e.channel) == (
        v.violation_id,
        "h-1",
        "5000000000000042",
        "online",
    )
    assert (e.decision_date.year, e.decision_date.month, e.decision_date.day) == (2026, 11, 20)
    assert (e.due_date.month, e.due_date.day) == (12, 5)
    assert (e.fine_fen, e.points, e.handler_person_id, e.handler_licence_id) == (
        20_000,
        3,
        "person-1",
        "licence-1",
    )
    assert e.vehicle_id == v.vehicle_id


def test_points_changed_and_disputes_on_the_wire() -> None:
    """R-ADJ-6: PointsChanged names its channel and cycle, keyed by the licence; R-ADJ-9."""
    points = envelope_of(
        PointsChanged(
            "licence-1", "person-1", 3, 9, date(2026, 3, 1), date(2027, 2, 28), "counter", "v-1"
        )
    )
    assert points.aggregate_id == "licence-1"
    p = unpack(points)
    assert isinstance(p, events.PointsChanged)
    assert (p.delta, p.points_after, p.channel, p.violation_id) == (3, 9, "counter", "v-1")
    assert (p.cycle_start.month, p.cycle_end.year) == (3, 2027)
    disputed = unpack(envelope_of(ViolationDisputed("v-1", "clerk01", "车辆被套牌")))
    assert isinstance(disputed, events.ViolationDisputed)
    assert (disputed.staff_id, disputed.reason) == ("clerk01", "车辆被套牌")
    undisputed = unpack(envelope_of(ViolationUndisputed("v-1", "clerk01")))
    assert isinstance(undisputed, events.ViolationUndisputed)


def test_a_handling_masks_the_owners_name_and_shows_expiry_and_use() -> None:
    """R-Q-4: the handler sees the owner's name masked; R-ADJ-8: a passed step shows when
    it expires, and "expired" once past it."""
    now = CLOCK.now()
    step = VerificationStep(
        "ver-1",
        "owner",
        "owner-1",
        "张伟",
        "sandbox",
        "sbx-1",
        "https://x",
        "passed",
        now,
        passed_at=now,
        expires_at=now + timedelta(minutes=10),
    )
    mine = VerificationStep(
        "ver-2", "handler", "handler-1", "刘洋", "sandbox", "sbx-2", "https://y", "pending", now
    )
    handling = Handling(
        "h-1",
        "v-1",
        "veh-1",
        "handler-1",
        "licence-1",
        "owner_then_handler",
        "follower",
        "awaiting_verification",
        (step, mine),
        now,
    )
    shown = handling_to_proto(handling, now=now)
    assert [s.person_name for s in shown.steps] == ["张*", "刘洋"]
    assert [s.status for s in shown.steps] == ["passed", "pending"]
    assert shown.steps[0].expires_at.ToDatetime(tzinfo=UTC) == now + timedelta(minutes=10)
    assert not shown.HasField("decision")
    later = handling_to_proto(handling, now=now + timedelta(minutes=10))
    assert later.steps[0].status == "expired"
