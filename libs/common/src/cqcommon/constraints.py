"""From a database constraint to a stable error code (R-ERR-1: never a 500 from bad input).

The database is the last word on uniqueness and integrity: two requests racing for the
same decision number both pass every check a use case can make before writing, and only
the unique index decides. So each service keeps one :class:`ConstraintTable` naming every
constraint of its schema: either the :class:`Refusal` a request that hits it receives
(``DECISION_NO_CONFLICT``, ``INVALID_FINE`` ...), or, for constraints no request can reach
(tables written only by consumers or the plumbing), the reason why. A service's
integration test walks ``pg_constraint`` and fails on a constraint the table does not know,
so a new constraint cannot ship without deciding what it answers (the walk over every
schema is ``tests/integration/test_constraint_tables.py``; :data:`PLUMBING` covers the
outbox, inbox and migration tables every schema has).

:func:`constraint_errors` wraps a unit of work: a psycopg ``IntegrityError`` (unique, check,
foreign key, not-null, exclusion) raised inside it becomes the mapped ``DomainError``. A
constraint the table does not map is a bug: it is logged by name and answers
``INTERNAL_ERROR``. Neither path chains or logs the driver's message: its ``DETAIL`` line
quotes the offending values (``Key (licence_no)=(500101...)``), i.e. personal data.

NOT NULL violations carry no constraint name in PostgreSQL 15; they are keyed
``"<table>.<column>"`` (:func:`not_null_key`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg import errors as pg_errors

from cqcommon.errors import INTERNAL_ERROR, DomainError, ErrorSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """What a request that hits a constraint receives: a stable code and, optionally, the
    request field at fault (``details.field``). Never the constraint name: that is a
    storage detail, not part of the API."""

    spec: ErrorSpec
    field: str | None = None

    def error(self) -> DomainError:
        return DomainError(self.spec, details={"field": self.field} if self.field else None)


def not_null_key(table: str, column: str) -> str:
    """The table key of a NOT NULL column (PostgreSQL 15 names no constraint for it)."""
    return f"{table}.{column}"


def constraint_key(exc: pg_errors.IntegrityError) -> str | None:
    """The name an integrity error is known by in a :class:`ConstraintTable`, or None."""
    diag = exc.diag
    if diag.constraint_name:
        return diag.constraint_name
    if isinstance(exc, pg_errors.NotNullViolation) and diag.table_name and diag.column_name:
        return not_null_key(diag.table_name, diag.column_name)
    return None


def columns(table: str, names: Iterable[str], why: str) -> dict[str, str]:
    """``unreachable`` entries for NOT NULL columns of ``table`` that share one reason."""
    return {not_null_key(table, name): why for name in names}


_PLUMBING_REASON = (
    "plumbing table (outbox relay, inbox, migrations) written by cqcommon with values it "
    "makes itself, never from request data"
)
#: The constraints of the tables every schema has (cqcommon's outbox and inbox, and the
#: migration record): no request reaches them. A service's table includes these.
PLUMBING: Mapping[str, str] = {
    "outbox_pkey": _PLUMBING_REASON,
    "outbox_event_id_key": _PLUMBING_REASON,
    **columns(
        "outbox",
        (
            "id",
            "event_id",
            "event_type",
            "topic",
            "message_key",
            "envelope",
            "headers",
            "created_at",
            "attempts",
            "next_attempt_at",
        ),
        _PLUMBING_REASON,
    ),
    "inbox_pkey": _PLUMBING_REASON,
    **columns(
        "inbox",
        (
            "consumer_group",
            "event_id",
            "event_type",
            "topic",
            "kafka_partition",
            "kafka_offset",
            "processed_at",
        ),
        _PLUMBING_REASON,
    ),
    "schema_migrations_pkey": _PLUMBING_REASON,
    **columns(
        "schema_migrations",
        ("track", "version", "name", "checksum", "applied_at"),
        _PLUMBING_REASON,
    ),
}


@dataclass(frozen=True)
class ConstraintTable:
    """Every constraint of one schema: mapped to a refusal, or listed as unreachable."""

    schema: str
    refusals: Mapping[str, Refusal]
    #: constraint (or ``table.column``) -> why no request can hit it
    unreachable: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = set(self.refusals) & set(self.unreachable)
        if both:
            raise ValueError(f"constraints both mapped and unreachable: {sorted(both)}")
        empty = [name for name, why in self.unreachable.items() if not why.strip()]
        if empty:
            raise ValueError(f"unreachable constraints need a reason: {sorted(empty)}")

    def knows(self, key: str) -> bool:
        """True when ``key`` is mapped or listed as unreachable (the walking tests ask)."""
        return key in self.refusals or key in self.unreachable

    def error_for(self, exc: pg_errors.IntegrityError) -> DomainError:
        """The ``DomainError`` a request receives for ``exc``.

        A constraint listed as unreachable that is hit anyway is a bug too: it answers
        ``INTERNAL_ERROR`` like an unknown one, and the log names it.
        """
        key = constraint_key(exc)
        refusal = self.refusals.get(key) if key else None
        if refusal is not None:
            return refusal.error()
        # Name, SQLSTATE and table only: the message and DETAIL quote the row's values.
        log.error(
            "unmapped database constraint %s (sqlstate %s, table %s.%s)%s",
            key or "<unnamed>",
            exc.sqlstate,
            self.schema,
            exc.diag.table_name,
            " listed as unreachable" if key in self.unreachable else "",
        )
        return DomainError(INTERNAL_ERROR)


@contextmanager
def constraint_errors(table: ConstraintTable) -> Iterator[None]:
    """Turn an ``IntegrityError`` raised inside the block into ``table``'s ``DomainError``.

    Wrap the whole unit of work, commit included (a deferred constraint fails at commit).
    The transaction itself must still be rolled back by the unit of work; entering this
    block before the unit of work (so it exits after it) keeps that order.
    """
    try:
        yield
    except pg_errors.IntegrityError as exc:
        # ``from None``: the driver's exception text quotes the offending values.
        raise table.error_for(exc) from None
