"""Every constraint of the ``follow`` schema and what a request that hits it receives
(R-ERR-1: a 4xx with a stable code, never a 500, never a partial write).

Names come from migration 0002 (every constraint named there). ``REFUSALS`` covers what a
request can reach: the partial unique indexes are the database's word on "one running
follow per follower and vehicle (or licence)" and "one waiting request per requester and
vehicle". Activations lock the follower's row first, so the code decides before the follow
indexes do; two requests of one user for one vehicle racing past the check meet the
request index, and the later one answers ALREADY_FOLLOWING like the check would have.
``UNREACHABLE`` lists what no request writes, with the reason. The walk over every schema
(``tests/integration/test_constraint_tables.py``) fails on a constraint this table does
not know, so none can ship without a decided answer.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, Refusal, columns
from cqcommon.errors import ALREADY_FOLLOWING

_REGISTRY_COPY = (
    "written only by the registry-event consumer (upserts by id from registry events), "
    "never by a request"
)
_QUOTA_ROW = "INSERT ... ON CONFLICT DO NOTHING of a key the use case builds from the caller"
_FOLLOW = (
    "set by the use case from enum values, the clock, a fresh uuid4 and the caller or the "
    "matched registry record, never taken from a request as such"
)
_REQUEST = (
    "set by the use case from the request state machine (domain.follows), the clock, a "
    "fresh uuid4, the caller and the matched vehicle, never taken from a request as such"
)

REFUSALS: dict[str, Refusal] = {
    # the database's last word on R-FOL-1/8 duplicates (see the module docstring)
    "follows_one_per_follower_vehicle": Refusal(ALREADY_FOLLOWING),
    "follows_one_per_follower_licence": Refusal(ALREADY_FOLLOWING),
    "follow_requests_one_pending": Refusal(ALREADY_FOLLOWING),
}

UNREACHABLE: dict[str, str] = {
    "persons_pkey": _REGISTRY_COPY,
    **columns("persons", ("person_id", "name", "updated_at"), _REGISTRY_COPY),
    "vehicles_pkey": _REGISTRY_COPY,
    **columns(
        "vehicles",
        ("vehicle_id", "plate_type", "plate_number", "vin", "owner_person_id", "updated_at"),
        _REGISTRY_COPY,
    ),
    "licences_pkey": _REGISTRY_COPY,
    **columns(
        "licences",
        ("licence_id", "person_id", "licence_no", "file_no", "updated_at"),
        _REGISTRY_COPY,
    ),
    "follower_quotas_pkey": _QUOTA_ROW,
    **columns("follower_quotas", ("follower_key", "created_at"), _QUOTA_ROW),
    "follows_pkey": "follow ids are fresh uuid4 values made by the use case",
    "follows_follower_known": _FOLLOW,
    "follows_target_known": _FOLLOW,
    "follows_target_subject": _FOLLOW,
    "follows_consent_known": _FOLLOW,
    "follows_consent_fits_target": _FOLLOW,
    "follows_sms_expires": _FOLLOW,
    "follows_end_reason_known": _FOLLOW,
    "follows_ended_with_reason": _FOLLOW,
    **columns("follows", ("follow_id", "follower_key", "target", "consent", "started_at"), _FOLLOW),
    "follow_requests_pkey": "request ids are fresh uuid4 values made by the use case",
    # the follow is added in the same transaction, before the request names it
    "follow_requests_follow_fk": _REQUEST,
    "follow_requests_consent_known": _REQUEST,
    "follow_requests_state_known": _REQUEST,
    "follow_requests_pending_fits_consent": _REQUEST,
    "follow_requests_approved_has_follow": _REQUEST,
    "follow_requests_decided_when_done": _REQUEST,
    **columns(
        "follow_requests",
        (
            "request_id",
            "requester_user_id",
            "vehicle_id",
            "owner_person_id",
            "consent",
            "state",
            "created_at",
            "expires_at",
        ),
        _REQUEST,
    ),
    **PLUMBING,
}

FOLLOW_CONSTRAINTS = ConstraintTable(schema="follow", refusals=REFUSALS, unreachable=UNREACHABLE)
