"""Every constraint of the ``adjudication`` schema and what a request that hits it gets
(R-ERR-1: a 4xx with a stable code, never a 500, never a partial write).

Names come from migrations (0002 gave each an explicit name). ``REFUSALS`` covers what a
``RecordViolation`` request can reach: the domain checks first, so most of these are a
second line (the database agrees with ``validate_report``); the decision number's
uniqueness is only decidable here, since two requests can race for the same number.
``UNREACHABLE`` lists what no request writes, with the reason. The integration test
``test_constraints.py`` walks ``pg_constraint`` and the NOT NULL columns and fails on any
name missing from both, so a new constraint cannot ship without deciding its answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from cqcommon.constraints import PLUMBING, ConstraintTable, Refusal, columns, not_null_key
from cqcommon.errors import (
    DECISION_INCOMPLETE,
    DECISION_NO_CONFLICT,
    INVALID_FINE,
    INVALID_VIOLATION_CODE,
    INVALID_VIOLATION_RECORD,
    LICENCE_NOT_FOUND,
    SOURCE_RECORD_CONFLICT,
    VEHICLE_NOT_FOUND,
)

_REGISTRY_COPY = (
    "written only by the registry-event consumer (upserts by id from registry events), "
    "never by a request"
)
_SERVER_SET = "set by the service (fresh uuid4, fingerprint or column default), not by a request"


def _not_null(columns: Iterable[str]) -> dict[str, Refusal]:
    """A NULL in a field a RecordViolation request supplies: an incomplete record."""
    return {
        not_null_key("violations", column): Refusal(INVALID_VIOLATION_RECORD, field=column)
        for column in columns
    }


REFUSALS: dict[str, Refusal] = {
    # two violations cannot share a decision number (R-ADJ-7): a race or a resent ticket
    "violations_decision_no_unique": Refusal(DECISION_NO_CONFLICT, field="decision_no"),
    # ON CONFLICT DO NOTHING makes a replay the idempotent path; mapped for completeness
    "violations_source_record_unique": Refusal(SOURCE_RECORD_CONFLICT, field="source_record_id"),
    "violations_decision_pair": Refusal(DECISION_INCOMPLETE, field="decision_date"),
    "violations_fine_positive": Refusal(INVALID_FINE, field="fine_fen"),
    "violations_points_range": Refusal(INVALID_VIOLATION_CODE, field="violation_code"),
    "violations_source_known": Refusal(INVALID_VIOLATION_RECORD, field="source"),
    "violations_procedure_known": Refusal(INVALID_VIOLATION_RECORD, field="procedure"),
    "violations_status_known": Refusal(INVALID_VIOLATION_RECORD, field="status"),
    # the use case resolves both first in the same transaction; the copy is never pruned
    "violations_vehicle_fk": Refusal(VEHICLE_NOT_FOUND, field="plate_number"),
    "violations_licence_fk": Refusal(LICENCE_NOT_FOUND, field="licence_no"),
    **_not_null(
        (
            "source_system",
            "source_record_id",
            "vehicle_id",
            "violation_code",
            "description_zh",
            "occurred_at",
            "place",
            "fine_fen",
            "points",
            "source",
            "procedure",
            "status",
        )
    ),
}

UNREACHABLE: dict[str, str] = {
    "violations_pkey": "violation ids are fresh uuid4 values made by the use case",
    **columns(
        "violations", ("violation_id", "request_hash", "disputed", "recorded_at"), _SERVER_SET
    ),
    "vehicles_pkey": _REGISTRY_COPY,
    "vehicles_plate_unique": _REGISTRY_COPY,
    **columns(
        "vehicles",
        ("vehicle_id", "plate_type", "plate_number", "vin", "owner_person_id"),
        _REGISTRY_COPY,
    ),
    "licences_pkey": _REGISTRY_COPY,
    "licences_licence_no_unique": _REGISTRY_COPY,
    **columns(
        "licences",
        (
            "licence_id",
            "person_id",
            "licence_no",
            "file_no",
            "licence_class",
            "first_issued_on",
            "status",
        ),
        _REGISTRY_COPY,
    ),
    "violation_codes_pkey": _REGISTRY_COPY,
    "violation_codes_points_range": _REGISTRY_COPY,
    **columns(
        "violation_codes",
        ("code", "description_zh", "points", "fine_min_fen", "fine_max_fen"),
        _REGISTRY_COPY,
    ),
    **PLUMBING,
}

ADJUDICATION_CONSTRAINTS = ConstraintTable(
    schema="adjudication", refusals=REFUSALS, unreachable=UNREACHABLE
)
