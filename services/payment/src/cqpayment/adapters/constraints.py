"""Every constraint of the ``payment`` schema and what a request that hits it receives
(R-ERR-1: a 4xx with a stable code, never a 500, never a partial write).

Names come from migrations 0002 and 0003 (every constraint named there). ``REFUSALS`` covers what a
request can reach. The two partial unique indexes are the database's word on R-PAY-3:
every path that adds or settles a payment locks the decision's row first, so the code
decides before the index does; the index answers only if that discipline is ever broken
(a second pending payment is ``PAYMENT_IN_PROGRESS``, a second success ``ALREADY_PAID``).
``UNREACHABLE`` lists what no request writes, with the reason. The walk over every schema
(``tests/integration/test_constraint_tables.py``) fails on a constraint this table does
not know, so none can ship without a decided answer.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, Refusal, columns
from cqcommon.errors import (
    ALREADY_PAID,
    DECISION_NOT_FOUND,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_INVALID,
    PAYMENT_IN_PROGRESS,
    VALIDATION_FAILED,
)

_REGISTRY_COPY = (
    "written only by the registry-event consumer (upserts by id from registry events), "
    "never by a request"
)
_EVENT_COPY = (
    "written only by the violation-event consumer from adjudication's events (upserts by "
    "id), never by a request"
)
_SERVER_SET = (
    "set by the use case (fresh uuid4, random order number, enum value, clock or computed "
    "amount), never taken from a request"
)
_SETTLEMENT = (
    "written by the settlement code from the locked payment's state machine "
    "(domain.payments), never from a request"
)
_KEY = "written by the idempotency-key code with values it makes itself, never from a request"
_NOTIFICATION = (
    "written by the notification use case after the provider's signature checked out "
    "(ON CONFLICT DO NOTHING on notify_id), with the parsed, typed fields"
)
_REFUND = (
    "written by the refund code from a locked duplicate payment (one refund per payment, "
    "created under the decision's lock), never from a request"
)
_OVERDUE_JOB = (
    "written only by the R-JOB-6 overdue job from the notice it decided (an enum value, the "
    "clock, the SMS gateway's id), never from a request"
)
_RECONCILIATION_JOB = (
    "written only by the R-JOB-2 reconciliation job from its pure comparison (counts, kinds "
    "and amounts it computed, the statement's order numbers), never from a request"
)
_READ_FIRST = (
    "the use case read the referenced row in the same transaction (rows are never deleted)"
)

REFUSALS: dict[str, Refusal] = {
    # R-PAY-3, the database's last word (see the module docstring)
    "payments_one_pending_per_decision": Refusal(PAYMENT_IN_PROGRESS, field="decision_no"),
    "payments_one_succeeded_per_decision": Refusal(ALREADY_PAID, field="decision_no"),
    # the payment's decision was locked in the same transaction (decisions are never deleted)
    "payments_decision_fk": Refusal(DECISION_NOT_FOUND, field="decision_no"),
    # a fine of 0 has nothing to pay (adjudication never issues one: its fines are > 0)
    "payments_amount_positive": Refusal(VALIDATION_FAILED, field="decision_no"),
    # the use case validates the key first (domain.idempotency.validate_key)
    "idempotency_keys_key_length": Refusal(IDEMPOTENCY_KEY_INVALID, field="idempotency_key"),
    # the claim is INSERT ... ON CONFLICT DO NOTHING; mapped for completeness
    "idempotency_keys_pkey": Refusal(IDEMPOTENCY_KEY_IN_USE, field="idempotency_key"),
    # the use case checks the stripped text first (domain.feedback.validate_text)
    "feedback_text_length": Refusal(VALIDATION_FAILED, field="text"),
}

UNREACHABLE: dict[str, str] = {
    "persons_pkey": _REGISTRY_COPY,
    **columns("persons", ("person_id", "name"), _REGISTRY_COPY),
    "vehicles_pkey": _REGISTRY_COPY,
    **columns("vehicles", ("vehicle_id", "owner_person_id", "plate_number"), _REGISTRY_COPY),
    "licences_pkey": _REGISTRY_COPY,
    **columns("licences", ("licence_id", "person_id"), _REGISTRY_COPY),
    "violations_pkey": _EVENT_COPY,
    **columns(
        "violations",
        (
            "violation_id",
            "vehicle_id",
            "plate_number",
            "violation_code",
            "description_zh",
            "occurred_at",
            "place",
            "fine_fen",
            "points",
            "disputed",
            "updated_at",
        ),
        _EVENT_COPY,
    ),
    "decisions_pkey": _EVENT_COPY,
    "decisions_violation_unique": _EVENT_COPY,
    "decisions_decision_no_format": _EVENT_COPY,
    "decisions_fine_nonnegative": _EVENT_COPY,
    "decisions_learned_from_known": _EVENT_COPY,
    **columns(
        "decisions",
        (
            "decision_no",
            "violation_id",
            "decision_date",
            "fine_fen",
            "points",
            "vehicle_id",
            "disputed",
            "learned_from",
            "created_at",
            "updated_at",
        ),
        _EVENT_COPY,
    ),
    "payments_pkey": "payment ids are fresh uuid4 values made by the use case",
    "payments_out_trade_no_unique": (
        "order numbers are the local date and 24 random hex digits made by the use case"
    ),
    # the provider assigns one trade number per order number
    "payments_provider_trade_no_unique": _SETTLEMENT,
    "payments_channel_known": _SERVER_SET,
    "payments_state_known": _SETTLEMENT,
    "payments_amount_sum": _SERVER_SET,
    "payments_paid_when_settled": _SETTLEMENT,
    "payments_payer_known": _SERVER_SET,
    **columns(
        "payments",
        (
            "payment_id",
            "decision_no",
            "violation_id",
            "channel",
            "state",
            "amount_fen",
            "fine_fen",
            "late_fee_fen",
            "out_trade_no",
            "created_at",
            "expires_at",
            "updated_at",
        ),
        _SERVER_SET,
    ),
    "idempotency_keys_payment_fk": _READ_FIRST,
    "idempotency_keys_operation_known": _KEY,
    "idempotency_keys_state_known": _KEY,
    "idempotency_keys_completed_response": _KEY,
    **columns(
        "idempotency_keys",
        ("scope", "operation", "key", "request_hash", "state", "created_at"),
        _KEY,
    ),
    "notifications_pkey": _NOTIFICATION,
    **columns(
        "notifications", ("notify_id", "out_trade_no", "trade_state", "received_at"), _NOTIFICATION
    ),
    "rejected_notifications_pkey": "an identity column",
    **columns(
        "rejected_notifications",
        ("id", "received_at", "reason"),
        "stable reasons and the clock, written by the notification use case",
    ),
    "refunds_pkey": _REFUND,
    "refunds_payment_unique": _REFUND,
    "refunds_payment_fk": _REFUND,
    "refunds_out_request_no_unique": _REFUND,
    "refunds_reason_known": _REFUND,
    "refunds_state_known": _REFUND,
    "refunds_amount_positive": _REFUND,
    "refunds_approved_by_supervisor": _REFUND,
    **columns(
        "refunds",
        (
            "refund_id",
            "payment_id",
            "decision_no",
            "amount_fen",
            "reason",
            "state",
            "out_request_no",
            "created_at",
        ),
        _REFUND,
    ),
    "feedback_pkey": "feedback ids are fresh uuid4 values made by the use case",
    "feedback_payment_fk": _READ_FIRST,
    **columns(
        "feedback",
        ("feedback_id", "payment_id", "user_id", "text", "created_at"),
        "set by the use case from the visible payment, the caller, the checked text and the clock",
    ),
    "decisions_overdue_notice_known": _OVERDUE_JOB,
    "decisions_overdue_marked_together": _OVERDUE_JOB,
    "decisions_overdue_sms_id_when_sent": _OVERDUE_JOB,
    "reconciliation_days_pkey": (
        "the job replaces a day's row with INSERT ... ON CONFLICT (day) DO UPDATE"
    ),
    "reconciliation_days_counts_nonnegative": _RECONCILIATION_JOB,
    **columns(
        "reconciliation_days",
        (
            "day",
            "completed_at",
            "statement_lines",
            "our_payments",
            "matched",
            "ours_only",
            "theirs_only",
            "amount_differs",
        ),
        _RECONCILIATION_JOB,
    ),
    "reconciliation_mismatches_pkey": (
        "the job deletes a day's mismatches before writing them again, one per order number"
        " (the comparison keys both sides by it)"
    ),
    "reconciliation_mismatches_day_fk": "the job writes the day's row first, same transaction",
    "reconciliation_mismatches_kind_known": _RECONCILIATION_JOB,
    "reconciliation_mismatches_amounts": _RECONCILIATION_JOB,
    **columns("reconciliation_mismatches", ("day", "kind", "out_trade_no"), _RECONCILIATION_JOB),
    **PLUMBING,
}

PAYMENT_CONSTRAINTS = ConstraintTable(schema="payment", refusals=REFUSALS, unreachable=UNREACHABLE)
