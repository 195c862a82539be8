"""Protobuf <-> domain for QueryService: requests' callers in, use-case results out.

The results arrive already decided and masked (``domain.results``); this module only
copies fields into messages. ``ProtoPageRenderer`` is the ``ports.PageRenderer`` whose
bytes the page cache holds: a ``ListViolationsResponse`` without its cursor, so a
cached page is parsed once and gets its caller's signed cursor set on top. A user's
own copy of a page carries their online-handling hints (R-Q-3), set on its items once
when the copy is made (``with_hints``), so a cached copy is sent as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cqcommon import scoring
from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    STATUS_NAMES,
    STATUSES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as pb

from cqquery.domain.masking import Person
from cqquery.domain.model import Caller
from cqquery.domain.results import (
    Availability,
    LicenceShown,
    ListPage,
    Lookup,
    Me,
    OnlineHandlingHint,
    PageItem,
    VehicleShown,
    ViolationDetail,
    ViolationShown,
)

_AVAILABILITY: dict[Availability, common.OnlineHandling.Availability.ValueType] = {
    "unspecified": common.OnlineHandling.AVAILABILITY_UNSPECIFIED,
    "allowed": common.OnlineHandling.AVAILABILITY_ALLOWED,
    "refused": common.OnlineHandling.AVAILABILITY_REFUSED,
    "unknown": common.OnlineHandling.AVAILABILITY_UNKNOWN,
}


def caller_from_proto(caller: common.Caller) -> Caller:
    return Caller(
        user_id=caller.user_id,
        person_id=caller.person_id,
        staff_id=caller.staff_id,
        staff_role=caller.staff_role,
    )


def violation_to_proto(shown: ViolationShown) -> pb.ViolationView:
    row, amounts = shown.row, shown.amounts
    return pb.ViolationView(
        violation_id=row.violation_id,
        vehicle_id=row.vehicle_id,
        plate_type=plate_type_to_proto(row.plate_type),
        plate_number=row.plate_number,
        licence_id=row.licence_id or "",
        occurred_at=timestamp_to_proto(row.occurred_at),
        place=row.place,
        violation_code=row.violation_code,
        description_zh=row.description_zh,
        fine_fen=row.fine_fen,
        points=row.points,
        source=SOURCES[row.source],
        procedure=PROCEDURES[row.procedure],
        status=STATUSES[row.status],
        decision_no=row.decision_no or "",
        decision_date=date_to_proto(row.decision_date),
        due_date=date_to_proto(amounts.due_date),
        late_fee_fen=amounts.late_fee_fen,
        amount_due_fen=amounts.amount_due_fen,
        disputed=row.disputed,
    )


def hint_to_proto(hint: OnlineHandlingHint) -> common.OnlineHandling:
    return common.OnlineHandling(
        availability=_AVAILABILITY[hint.availability],
        route=hint.route,
        reason_code=hint.reason_code,
        reason_zh=hint.reason_zh,
        reason_en=hint.reason_en,
        reasons=[common.Reason(code=r.code, zh=r.zh, en=r.en) for r in hint.reasons],
    )


def detail_to_proto(detail: ViolationDetail) -> pb.ViolationView:
    view = violation_to_proto(detail.violation)
    if detail.online_handling is not None:
        view.online_handling.CopyFrom(hint_to_proto(detail.online_handling))
    return view


def person_to_proto(person: Person | None) -> pb.PersonView | None:
    if person is None:
        return None
    return pb.PersonView(
        person_id=person.person_id, name=person.name, id_number=person.id_number, phone=person.phone
    )


def vehicle_to_proto(shown: VehicleShown) -> pb.VehicleView:
    row = shown.vehicle
    return pb.VehicleView(
        vehicle_id=row.vehicle_id,
        plate_type=plate_type_to_proto(row.plate_type),
        plate_number=row.plate_number,
        vin=row.vin,
        owner=person_to_proto(row.owner),
        relation=shown.relation,
        unhandled_count=row.unhandled_count,
        unpaid_count=row.unpaid_count,
    )


def dashboard_to_proto(board: scoring.PointsDashboard) -> pb.PointsDashboard:
    reason_zh, reason_en = board.limit_reason_text or ("", "")
    return pb.PointsDashboard(
        points=board.points,
        cycle_start=date_to_proto(board.cycle.start),
        cycle_end=date_to_proto(board.cycle.end),
        may_drive=board.may_drive,
        limit_reason=board.limit_reason or "",
        limit_reason_zh=reason_zh,
        limit_reason_en=reason_en,
        points_limit=board.points_limit,
        licence_status=board.licence_status,
    )


def licence_to_proto(shown: LicenceShown) -> pb.LicenceView:
    row = shown.licence
    return pb.LicenceView(
        licence_id=row.licence_id,
        licence_no=row.licence_no,
        file_no=row.file_no,
        licence_class=row.licence_class,
        first_issued_on=date_to_proto(row.first_issued_on),
        holder=person_to_proto(row.holder),
        points=dashboard_to_proto(shown.dashboard),
        relation=shown.relation,
    )


def me_to_proto(me: Me) -> pb.GetMeResponse:
    return pb.GetMeResponse(
        person=person_to_proto(me.person),
        vehicles=[vehicle_to_proto(v) for v in me.vehicles],
        licence=licence_to_proto(me.licence) if me.licence else None,
        followed_vehicles=[vehicle_to_proto(v) for v in me.followed_vehicles],
        followed_licences=[licence_to_proto(lic) for lic in me.followed_licences],
    )


def list_page_to_proto(page: ListPage) -> pb.ListViolationsResponse:
    response = pb.ListViolationsResponse.FromString(page.body)
    response.next_cursor = page.next_cursor
    return response


def lookup_to_proto(lookup: Lookup) -> pb.LookupResponse:
    return pb.LookupResponse(
        vehicle=vehicle_to_proto(lookup.vehicle) if lookup.vehicle else None,
        licence=licence_to_proto(lookup.licence) if lookup.licence else None,
        violations=pb.ListViolationsResponse.FromString(lookup.page.body).violations,
        next_cursor=lookup.page.next_cursor,
    )


class ProtoPageRenderer:
    """``ports.PageRenderer``: a page's violations as ``ListViolationsResponse`` bytes."""

    def render(self, violations: Sequence[ViolationShown]) -> bytes:
        message = pb.ListViolationsResponse(violations=[violation_to_proto(v) for v in violations])
        return message.SerializeToString()

    def items(self, body: bytes) -> list[PageItem]:
        return [
            PageItem(v.violation_id, v.vehicle_id, STATUS_NAMES[v.status], v.disputed)
            for v in pb.ListViolationsResponse.FromString(body).violations
        ]

    def with_hints(self, body: bytes, hints: Mapping[str, OnlineHandlingHint]) -> bytes:
        message = pb.ListViolationsResponse.FromString(body)
        for view in message.violations:
            hint = hints.get(view.violation_id)
            if hint is not None:
                view.online_handling.CopyFrom(hint_to_proto(hint))
        return message.SerializeToString()
