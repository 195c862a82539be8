"""R-ERR-1: every database constraint a request can hit answers a 4xx with its own code.

The walk: for every schema, every constraint PostgreSQL enforces — primary keys, unique,
check, foreign key and exclusion constraints, unique indexes, NOT NULL columns — is in that
schema's ``ConstraintTable`` (``cqcommon.constraints``): mapped to the refusal a request
that hits it receives, or listed as unreachable by a request with the reason. A new
constraint without a decided answer fails here before it can answer a 500; a name in a
table that the schema no longer has (a typo maps nothing) fails too.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from cqadjudication.adapters.constraints import ADJUDICATION_CONSTRAINTS
from cqcommon.constraints import ConstraintTable, not_null_key
from cqcommon.settings import Settings
from cqfollow.adapters.constraints import FOLLOW_CONSTRAINTS
from cqgateway.constraints import GATEWAY_CONSTRAINTS
from cqjobs.adapters.constraints import JOBS_CONSTRAINTS
from cqpayment.adapters.constraints import PAYMENT_CONSTRAINTS
from cqquery.adapters.constraints import QUERY_CONSTRAINTS
from cqregistry.adapters.constraints import REGISTRY_CONSTRAINTS

pytestmark = pytest.mark.integration

TABLES = (
    ADJUDICATION_CONSTRAINTS,
    FOLLOW_CONSTRAINTS,
    GATEWAY_CONSTRAINTS,
    JOBS_CONSTRAINTS,
    PAYMENT_CONSTRAINTS,
    QUERY_CONSTRAINTS,
    REGISTRY_CONSTRAINTS,
)

_CONSTRAINTS = (
    "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
    " WHERE n.nspname = %s AND c.contype IN ('p', 'u', 'c', 'f', 'x')"
)
# a unique index that backs no constraint (CREATE UNIQUE INDEX) raises under its own name
_UNIQUE_INDEXES = (
    "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
    " JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = %s AND x.indisunique"
    " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
)
_NOT_NULL = (
    "SELECT c.table_name, c.column_name FROM information_schema.columns c"
    " JOIN information_schema.tables t USING (table_schema, table_name)"
    " WHERE c.table_schema = %s AND c.is_nullable = 'NO' AND t.table_type = 'BASE TABLE'"
)


def test_every_migrated_schema_has_a_table(migrated_database: dict[str, list[str]]) -> None:
    assert set(migrated_database) == {table.schema for table in TABLES}


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.schema)
def test_r_err_1_every_constraint_is_mapped_or_explained(
    table: ConstraintTable, test_settings: Settings, migrated_database: Any
) -> None:
    with psycopg.connect(test_settings.database_url) as conn:
        names = {r[0] for r in conn.execute(_CONSTRAINTS, (table.schema,))}
        names |= {r[0] for r in conn.execute(_UNIQUE_INDEXES, (table.schema,))}
        not_null = {not_null_key(t, c) for t, c in conn.execute(_NOT_NULL, (table.schema,))}
    keys = names | not_null
    assert names and not_null, "the walk saw the schema"
    unknown = sorted(key for key in keys if not table.knows(key))
    assert unknown == [], f"decide what a request hitting these receives: {unknown}"
    stale = sorted((set(table.refusals) | set(table.unreachable)) - keys)
    assert stale == [], f"named in the table but not in schema {table.schema}: {stale}"
