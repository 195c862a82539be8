"""Every constraint of the ``gateway`` schema, and why no request can hit one (R-ERR-1).

The gateway writes two tables: ``staff``, only by the sandbox accounts at start and the
``python -m cqgateway staff`` command (a login only reads it), and ``audit_log``, one row
per ``/internal/v1`` call from the audit middleware, whose values come from the ASGI scope
and the gateway itself (a request's text reaches it only percent-encoded or after the
string check). The walk over every schema (``tests/integration/test_constraint_tables.py``)
fails on a constraint this table does not know.
"""

from __future__ import annotations

from cqcommon.constraints import PLUMBING, ConstraintTable, columns

_STAFF = "staff accounts are written by the sandbox start-up and the staff command, not by requests"
_AUDIT = (
    "set by the audit middleware from the ASGI scope (method, path, query string, status) "
    "or by the database (id, time); never null, never a request's own value"
)

GATEWAY_CONSTRAINTS = ConstraintTable(
    schema="gateway",
    refusals={},
    unreachable={
        "staff_pkey": _STAFF,
        "staff_staff_id_check": _STAFF,
        "staff_role_check": _STAFF,
        **columns(
            "staff",
            ("staff_id", "role", "password_hash", "active", "created_at", "updated_at"),
            _STAFF,
        ),
        "audit_log_pkey": _AUDIT,
        **columns(
            "audit_log",
            ("audit_id", "occurred_at", "method", "path", "query", "subjects", "status_code"),
            _AUDIT,
        ),
        **PLUMBING,
    },
)
