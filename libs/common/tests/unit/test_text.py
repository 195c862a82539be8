"""The one check every incoming string passes (R-ERR-1: bad input is a 4xx with a code)."""

from __future__ import annotations

import re

import pytest
from cqcommon.errors import INVALID_CHARACTERS, DomainError
from cqcommon.text import CLEAN_TEXT_PATTERN, check_strings, check_text, forbidden_position


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",  # NUL: PostgreSQL refuses it inside text
        "a\x1bb",  # ESC: terminal escapes in logs
        "a\x7fb",  # DEL
        "a\x85b",  # C1 (NEL)
        "渝A\u202e54321",  # right-to-left override: displays as another plate
        "a\u2066b",  # isolate
        "a\u200fb",  # right-to-left mark
        "渝A1\u200b2345",  # zero-width space: looks like 渝A12345
        "a\ufeffb",  # BOM / zero-width no-break space
        "a\ud800b",  # lone surrogate: cannot be encoded to UTF-8
        "a\ufffeb",  # noncharacter
    ],
)
def test_r_err_1_forbidden_characters_are_refused_with_a_code(value: str) -> None:
    with pytest.raises(DomainError) as caught:
        check_text(value, field="place")
    assert caught.value.code == INVALID_CHARACTERS.code
    # the position of the first forbidden character, never the character itself
    ordinary = [c for c in value if forbidden_position(c) is None]
    position = next(i for i, c in enumerate(value) if c not in ordinary)
    assert caught.value.details == {"field": "place", "position": position}


@pytest.mark.parametrize("value", ["渝A12345", "重庆市渝中区解放碑民族路 88 号", "Ünïcödé", ""])
def test_ordinary_text_passes_unchanged(value: str) -> None:
    assert check_text(value, field="place") == value


def test_newlines_only_where_a_field_allows_them() -> None:
    assert forbidden_position("line one\nline two") == 8
    assert forbidden_position("line one\r\nline two", allow_newlines=True) is None
    # a tab or NUL is still refused in free text
    assert forbidden_position("a\tb", allow_newlines=True) == 1
    assert forbidden_position("a\x00b", allow_newlines=True) == 1


def test_nested_strings_are_checked_and_named_by_path() -> None:
    body = {"a": {"b": ["ok", "bad\x00"]}, "c": "fine"}
    with pytest.raises(DomainError) as caught:
        check_strings(body, field="")
    assert caught.value.details["field"] == "a.b[1]"


def test_a_bad_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(DomainError) as caught:
        check_strings({"outer": {"k\u202eey": 1}}, field="")
    assert caught.value.details["field"] == "outer.<key>"
    assert "\u202e" not in str(caught.value.details)


def test_free_text_paths_accept_newlines() -> None:
    check_strings({"text": "paid\nnot cleared"}, field="", allow_newlines=["text"])
    with pytest.raises(DomainError):
        check_strings({"title": "paid\nnot cleared"}, field="", allow_newlines=["text"])


def test_the_documented_pattern_is_the_same_rule() -> None:
    """/openapi.json states the rule as a pattern: it must refuse exactly what the check does."""
    pattern = re.compile(CLEAN_TEXT_PATTERN)
    for code in range(0x10000):
        char = chr(code)
        # fullmatch: JSON Schema (ECMA 262) anchors, where `$` never matches before a final "\n"
        assert (pattern.fullmatch(char) is None) == (forbidden_position(char) is not None), hex(
            code
        )
