"""Proto <-> domain at adjudication's edge: dates that are absent vs invalid, the
online-handling answer, and the event envelope of a recorded violation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cqadjudication.domain.eligibility import NOT_DETERMINED, record_eligibility
from cqadjudication.domain.events import ViolationRecorded
from cqadjudication.domain.violations import RecordingWindow, Violation
from cqadjudication.entrypoints.mappers import (
    decision_date_from_proto,
    envelope_of,
    online_handling_to_proto,
    report_from_request,
)
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
    refused = online_handling_to_proto(record_eligibility(violation()))
    assert refused.availability == common.OnlineHandling.AVAILABILITY_REFUSED
    assert (refused.route, refused.reason_code) == ("counter", "GENERAL_PROCEDURE_COUNTER_ONLY")
    assert refused.reason_zh and refused.reason_en
    unknown = online_handling_to_proto(NOT_DETERMINED)
    assert unknown.availability == common.OnlineHandling.AVAILABILITY_UNKNOWN
    assert unknown.reason_code == "ELIGIBILITY_NOT_AVAILABLE"


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
