"""Every constraint of the ``query`` schema, and why no request can hit one (R-ERR-1).

The read model is written only by the consumer of everyone's events (upserts and guarded
updates keyed by the events' ids); requests to the query service only read it. So every
constraint here is unreachable by a request. The walk over every schema
(``tests/integration/test_constraint_tables.py``) fails on one this table does not know.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, columns

_PROJECTION = (
    "read model written only by the event consumer (idempotent upserts keyed by the "
    "events' ids); requests only read"
)
#: the query service has no request that writes: the proof grants and limits are in Redis
_UNREACHABLE: dict[str, str] = {
    "follows_pkey": _PROJECTION,
    **columns("follows", ("follow_id", "active"), _PROJECTION),
    "licence_points_pkey": _PROJECTION,
    **columns("licence_points", ("licence_id", "points", "channel", "as_of"), _PROJECTION),
    "licences_pkey": _PROJECTION,
    **columns(
        "licences",
        (
            "licence_id",
            "person_id",
            "licence_no",
            "file_no",
            "licence_class",
            "first_issued_on",
            "points",
            "status",
        ),
        _PROJECTION,
    ),
    "persons_pkey": _PROJECTION,
    "persons_alipay_user_id_key": _PROJECTION,
    **columns("persons", ("person_id", "name", "id_number", "phone"), _PROJECTION),
    "vehicles_pkey": _PROJECTION,
    **columns(
        "vehicles",
        ("vehicle_id", "plate_type", "plate_number", "vin", "owner_person_id", "vehicle_kind"),
        _PROJECTION,
    ),
    "violation_disputes_pkey": _PROJECTION,
    **columns("violation_disputes", ("violation_id", "disputed", "as_of"), _PROJECTION),
    "violation_handlings_pkey": _PROJECTION,
    **columns(
        "violation_handlings",
        (
            "handling_id",
            "violation_id",
            "decision_no",
            "decision_date",
            "fine_fen",
            "points",
            "channel",
        ),
        _PROJECTION,
    ),
    "violation_payments_pkey": _PROJECTION,
    **columns("violation_payments", ("payment_id", "violation_id", "decision_no"), _PROJECTION),
    "violations_pkey": _PROJECTION,
    **columns(
        "violations",
        (
            "violation_id",
            "vehicle_id",
            "plate_type",
            "plate_number",
            "violation_code",
            "description_zh",
            "occurred_at",
            "place",
            "fine_fen",
            "points",
            "source",
            "procedure",
            "status",
            "disputed",
            "recorded_fine_fen",
            "recorded_points",
            "recorded_status",
        ),
        _PROJECTION,
    ),
    **PLUMBING,
}

QUERY_CONSTRAINTS = ConstraintTable(schema="query", refusals={}, unreachable=_UNREACHABLE)
