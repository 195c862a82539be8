"""cqcommon.constraints: a database constraint becomes its stable error code (R-ERR-1),
an unmapped one becomes INTERNAL_ERROR and is logged by name without the row's values."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from cqcommon.constraints import (
    ConstraintTable,
    Refusal,
    constraint_errors,
    constraint_key,
    not_null_key,
)
from cqcommon.errors import DomainError, ErrorKind, ErrorSpec
from psycopg import errors as pg_errors

TAKEN = ErrorSpec("THING_TAKEN", ErrorKind.CONFLICT, "已占用。", "Taken.")
BAD_AMOUNT = ErrorSpec("BAD_AMOUNT", ErrorKind.INVALID, "金额不正确。", "Bad amount.")
MISSING = ErrorSpec("FIELD_MISSING", ErrorKind.INVALID, "缺少字段。", "Missing field.")

TABLE = ConstraintTable(
    schema="things",
    refusals={
        "things_name_unique": Refusal(TAKEN, field="name"),
        "things_amount_positive": Refusal(BAD_AMOUNT),
        not_null_key("things", "name"): Refusal(MISSING, field="name"),
    },
    unreachable={"things_pkey": "ids are fresh uuid4 values"},
)

SECRET_DETAIL = "Key (licence_no)=(500101199001011237) already exists."


def integrity_error(
    kind: type[pg_errors.IntegrityError],
    *,
    constraint: str | None = None,
    table: str | None = "things",
    column: str | None = None,
) -> pg_errors.IntegrityError:
    """An error of ``kind`` whose diagnostics say what PostgreSQL would (no server needed)."""
    diag = SimpleNamespace(
        constraint_name=constraint,
        table_name=table,
        column_name=column,
        message_detail=SECRET_DETAIL,
    )

    class WithDiag(kind):  # type: ignore[valid-type,misc]
        @property
        def diag(self) -> Any:
            return diag

    return WithDiag(f"violates constraint. DETAIL: {SECRET_DETAIL}")


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (
            integrity_error(pg_errors.UniqueViolation, constraint="things_name_unique"),
            "THING_TAKEN",
            {"field": "name"},
        ),
        (
            integrity_error(pg_errors.CheckViolation, constraint="things_amount_positive"),
            "BAD_AMOUNT",
            {},
        ),
        (
            integrity_error(pg_errors.NotNullViolation, column="name"),
            "FIELD_MISSING",
            {"field": "name"},
        ),
    ],
    ids=["unique", "check", "not-null"],
)
def test_a_mapped_constraint_answers_its_stable_code(
    error: pg_errors.IntegrityError, code: str, details: dict[str, str]
) -> None:
    """R-ERR-1: a request that breaks a mapped constraint gets its 4xx code, not a 500."""
    with pytest.raises(DomainError) as raised, constraint_errors(TABLE):
        raise error
    assert raised.value.code == code
    assert raised.value.details == details
    # the driver's text (which quotes the row's values) is not chained onto the error
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


@pytest.mark.parametrize(
    "error",
    [
        integrity_error(pg_errors.ForeignKeyViolation, constraint="things_owner_fkey"),
        integrity_error(pg_errors.ExclusionViolation, constraint="things_no_overlap"),
        integrity_error(pg_errors.UniqueViolation, constraint="things_pkey"),
        integrity_error(pg_errors.NotNullViolation, column="amount"),
        integrity_error(pg_errors.UniqueViolation, constraint=None, table=None),
    ],
    ids=["unknown-fk", "unknown-exclusion", "listed-unreachable", "unknown-not-null", "unnamed"],
)
def test_an_unmapped_constraint_is_internal_and_logged_without_values(
    error: pg_errors.IntegrityError, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="cqcommon.constraints"),
        pytest.raises(DomainError) as raised,
        constraint_errors(TABLE),
    ):
        raise error
    assert raised.value.code == "INTERNAL_ERROR"
    assert raised.value.kind is ErrorKind.INTERNAL
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unmapped database constraint" in logged
    key = constraint_key(error)
    if key is not None:
        assert key in logged
    assert "500101199001011237" not in logged


def test_other_errors_pass_through_untouched() -> None:
    with pytest.raises(ValueError, match="not a database error"), constraint_errors(TABLE):
        raise ValueError("not a database error")
    with pytest.raises(DomainError) as raised, constraint_errors(TABLE):
        raise DomainError(TAKEN)
    assert raised.value.code == "THING_TAKEN"


def test_the_table_knows_mapped_and_unreachable_constraints_only() -> None:
    assert TABLE.knows("things_name_unique")
    assert TABLE.knows("things_pkey")
    assert TABLE.knows("things.name")
    assert not TABLE.knows("things_owner_fkey")


@pytest.mark.parametrize(
    ("refusals", "unreachable"),
    [
        ({"a": Refusal(TAKEN)}, {"a": "both"}),
        ({}, {"a": "  "}),
    ],
    ids=["mapped-and-unreachable", "no-reason"],
)
def test_a_table_must_be_unambiguous(
    refusals: dict[str, Refusal], unreachable: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        ConstraintTable(schema="things", refusals=refusals, unreachable=unreachable)
