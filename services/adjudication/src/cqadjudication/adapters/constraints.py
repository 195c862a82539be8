"""Every constraint of the ``adjudication`` schema and what a request that hits it gets
(R-ERR-1: a 4xx with a stable code, never a 500, never a partial write).

Names come from migrations (0002 gave each an explicit name; 0003 and later name their own).
``REFUSALS`` covers what a request can reach (a handling submitted twice is
``ALREADY_HANDLED``); for ``RecordViolation``: the domain checks first, so most of these are a
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
    ALREADY_HANDLED,
    DECISION_INCOMPLETE,
    DECISION_NO_CONFLICT,
    INVALID_FINE,
    INVALID_VIOLATION_CODE,
    INVALID_VIOLATION_RECORD,
    LICENCE_NOT_FOUND,
    SOURCE_RECORD_CONFLICT,
    VEHICLE_NOT_FOUND,
    VERIFICATION_USED,
)

_REGISTRY_COPY = (
    "written only by the registry-event consumer (upserts by id from registry events), "
    "never by a request"
)
_SERVER_SET = "set by the service (fresh uuid4, fingerprint or column default), not by a request"
_LEDGER = (
    "written by the ledger code (registry consumer, submit, counter, cycle rollover) with "
    "values the domain computed on the locked row, never taken from a request"
)
_HANDLING = (
    "written by the handling use cases from the domain's handling (state machine, route, "
    "relation, ids), never taken from a request"
)
_READ_FIRST = (
    "the use case read the referenced row in the same transaction (the copy is never pruned)"
)
_CASE_PAYMENTS = (
    "written only by the payment-event consumer (upserts by payment id from FinePaid and"
    " PaymentRefunded), never by a request"
)
_ALERT = "written by the R-X-2 guard from a refused assessment, never from a request"
_NOTICE = (
    "written by the notice code (nightly job, GetDecisionNotice) from a decided violation it"
    " read in the same transaction, never taken from a request"
)


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
    # R-ADJ-5: two handlings of one violation racing past every check (the submit locks
    # the violation first, so this is the database's last word)
    "handlings_one_submitted_per_violation": Refusal(ALREADY_HANDLED),
    "points_entries_violation_unique": Refusal(ALREADY_HANDLED),
    # R-ADJ-8: a provider's certify id backs one verification only, never a second one
    "verifications_certify_unique": Refusal(VERIFICATION_USED),
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
    "persons_pkey": _REGISTRY_COPY,
    **columns("persons", ("person_id", "name", "id_number"), _REGISTRY_COPY),
    "points_ledger_pkey": _LEDGER,
    "points_ledger_licence_fk": _LEDGER,
    "points_ledger_points_nonnegative": _LEDGER,
    "points_ledger_cycle_order": _LEDGER,
    **columns(
        "points_ledger", ("licence_id", "points", "cycle_start", "cycle_end", "updated_at"), _LEDGER
    ),
    "points_entries_pkey": _LEDGER,
    "points_entries_licence_fk": _LEDGER,
    "points_entries_violation_fk": _READ_FIRST,
    "points_entries_channel_known": _LEDGER,
    "points_entries_points_after_nonnegative": _LEDGER,
    **columns(
        "points_entries",
        ("entry_id", "licence_id", "delta", "points_after", "channel", "cycle_start", "at"),
        _LEDGER,
    ),
    "handlings_pkey": _HANDLING,
    "handlings_violation_fk": _READ_FIRST,
    "handlings_licence_fk": _READ_FIRST,
    "handlings_route_known": _HANDLING,
    "handlings_relation_known": _HANDLING,
    "handlings_state_known": _HANDLING,
    "handlings_submitted_decision": _HANDLING,
    **columns(
        "handlings",
        (
            "handling_id",
            "violation_id",
            "handler_person_id",
            "handler_licence_id",
            "route",
            "relation",
            "state",
            "created_at",
        ),
        _HANDLING,
    ),
    "verifications_pkey": _HANDLING,
    "verifications_handling_fk": _HANDLING,
    "verifications_step_known": _HANDLING,
    "verifications_status_known": _HANDLING,
    "verifications_passed_times": _HANDLING,
    "verifications_used_passed": _HANDLING,
    "verifications_step_unique": _HANDLING,
    **columns(
        "verifications",
        (
            "verification_id",
            "handling_id",
            "step",
            "person_id",
            "adapter",
            "certify_id",
            "url",
            "status",
            "started_at",
        ),
        _HANDLING,
    ),
    "points_buying_alerts_pkey": _ALERT,
    "points_buying_alerts_kind_known": _ALERT,
    # repeated attempts are one alert: ON CONFLICT DO NOTHING, never an error
    "points_buying_alerts_case_unique": _ALERT,
    **columns(
        "points_buying_alerts",
        (
            "alert_id",
            "kind",
            "licence_id",
            "vehicle_id",
            "cycle_start",
            "count",
            "violation_id",
            "handler_person_id",
            "raised_at",
        ),
        _ALERT,
    ),
    # the job and a GetDecisionNotice racing for one notice: ON CONFLICT DO NOTHING, the
    # first one stays (both rendered the same bytes from the same facts)
    "decision_notices_pkey": _NOTICE,
    "decision_notices_violation_unique": _NOTICE,
    "decision_notices_violation_fk": _READ_FIRST,
    **columns(
        "decision_notices", ("decision_no", "violation_id", "content", "generated_at"), _NOTICE
    ),
    "case_payments_pkey": _CASE_PAYMENTS,
    **columns("case_payments", ("payment_id", "violation_id", "decision_no"), _CASE_PAYMENTS),
    **PLUMBING,
}

ADJUDICATION_CONSTRAINTS = ConstraintTable(
    schema="adjudication", refusals=REFUSALS, unreachable=UNREACHABLE
)
