"""Pure helpers of cqcommon.db."""

from __future__ import annotations

import pytest
from cqcommon.db import NIL_UUID, check_schema_name, uuid_or_nil


def test_guessed_or_malformed_ids_become_the_nil_uuid() -> None:
    assert (
        uuid_or_nil("7F1D4C1E-0000-4000-8000-000000000000")
        == "7f1d4c1e-0000-4000-8000-000000000000"
    )
    for bad in ("", "42", "'; DROP TABLE violations; --", "7f1d4c1e"):
        assert uuid_or_nil(bad) == NIL_UUID


@pytest.mark.parametrize("name", ["Query", "query;drop", "1query", "a" * 64, ""])
def test_schema_names_are_plain_identifiers(name: str) -> None:
    with pytest.raises(ValueError):
        check_schema_name(name)
