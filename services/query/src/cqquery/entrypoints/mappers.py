"""Read-model rows -> QueryService protobuf messages, masked for the caller (R-Q-4)."""

from __future__ import annotations

from datetime import date

from cqcommon import scoring
from cqcommon.identifiers import mask_id_number
from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    STATUSES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqtraffic.query.v1 import query_pb2 as pb

from cqquery.adapters.postgres_read_model import LicenceRow, VehicleRow, ViolationRow
from cqquery.domain.access import Relation
from cqquery.domain.amounts import amount_view
from cqquery.domain.masking import Person, mask_file_no, mask_vin, person_for, sees_in_full


def violation_to_proto(row: ViolationRow, *, today: date) -> pb.ViolationView:
    amounts = amount_view(
        status=row.status, fine_fen=row.fine_fen, decision_date=row.decision_date, today=today
    )
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


def person_to_proto(
    person: Person | None, *, caller_person_id: str, is_staff: bool
) -> pb.PersonView | None:
    if person is None:
        return None
    shown = person_for(person, caller_person_id=caller_person_id, is_staff=is_staff)
    return pb.PersonView(
        person_id=shown.person_id, name=shown.name, id_number=shown.id_number, phone=shown.phone
    )


def vehicle_to_proto(
    row: VehicleRow, *, relation: Relation, caller_person_id: str, is_staff: bool
) -> pb.VehicleView:
    full = sees_in_full(
        subject_person_id=row.owner_person_id, caller_person_id=caller_person_id, is_staff=is_staff
    )
    return pb.VehicleView(
        vehicle_id=row.vehicle_id,
        plate_type=plate_type_to_proto(row.plate_type),
        plate_number=row.plate_number,
        vin=row.vin if full else mask_vin(row.vin),
        owner=person_to_proto(row.owner, caller_person_id=caller_person_id, is_staff=is_staff),
        relation=relation,
        unhandled_count=row.unhandled_count,
        unpaid_count=row.unpaid_count,
    )


def dashboard_to_proto(row: LicenceRow, *, today: date, points_limit: int) -> pb.PointsDashboard:
    cycle = (
        scoring.ScoringCycle(row.cycle_start, row.cycle_end)
        if row.cycle_start and row.cycle_end
        else None
    )
    board = scoring.dashboard(
        points=row.points,
        licence_status=row.status,
        first_issued_on=row.first_issued_on,
        today=today,
        points_limit=points_limit,
        cycle=cycle,
    )
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


def licence_to_proto(
    row: LicenceRow,
    *,
    relation: Relation,
    caller_person_id: str,
    is_staff: bool,
    today: date,
    points_limit: int,
) -> pb.LicenceView:
    full = sees_in_full(
        subject_person_id=row.person_id, caller_person_id=caller_person_id, is_staff=is_staff
    )
    return pb.LicenceView(
        licence_id=row.licence_id,
        # the licence number is the holder's ID number (R-Q-4)
        licence_no=row.licence_no if full else mask_id_number(row.licence_no),
        file_no=row.file_no if full else mask_file_no(row.file_no),
        licence_class=row.licence_class,
        first_issued_on=date_to_proto(row.first_issued_on),
        holder=person_to_proto(row.holder, caller_person_id=caller_person_id, is_staff=is_staff),
        points=dashboard_to_proto(row, today=today, points_limit=points_limit),
        relation=relation,
    )
