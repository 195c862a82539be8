"""Read-model rows -> QueryService protobuf messages."""

from __future__ import annotations

from cqcommon.protomap import (
    PROCEDURES,
    SOURCES,
    STATUSES,
    date_to_proto,
    plate_type_to_proto,
    timestamp_to_proto,
)
from cqtraffic.query.v1 import query_pb2 as pb

from cqquery.adapters.postgres_read_model import ViolationRow


def violation_to_proto(row: ViolationRow) -> pb.ViolationView:
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
        disputed=row.disputed,
    )
