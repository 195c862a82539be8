"""The one check every incoming string passes (R-ERR-1): no characters that corrupt storage,
logs or the way a clerk reads a record.

Refused everywhere: C0 control characters (NUL reaches PostgreSQL as an error, others
break logs and terminals), DEL and C1 controls, lone surrogates (they cannot be encoded
to UTF-8, so a database driver fails on them), bidirectional overrides, isolates and marks
(U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C: they make ``渝A12345`` display as
something else, the "Trojan Source" trick), zero-width characters (U+200B–U+200D, U+2060,
U+FEFF: two plates that look the same would be different strings) and the noncharacters
U+FFFE/U+FFFF. A field that allows newlines (free text) also accepts LF and CR.

The gateway applies this to every request body string, query and path parameter; a service
may call :func:`check_text` again on what reaches it by another way (gRPC, imports).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cqcommon.errors import INVALID_CHARACTERS, DomainError

_COMMON = (
    "\u007f-\u009f"  # DEL and C1 controls
    "\ud800-\udfff"  # lone surrogates (only reachable through JSON \\u escapes)
    "\u061c\u200e\u200f"  # bidi marks
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates
    "\u200b-\u200d\u2060\ufeff"  # zero-width space, joiners, word joiner, BOM
    "\ufffe\uffff"  # noncharacters
)
_FORBIDDEN = re.compile(f"[\x00-\x1f{_COMMON}]")
_FORBIDDEN_EXCEPT_NEWLINES = re.compile(f"[\x00-\x09\x0b\x0c\x0e-\x1f{_COMMON}]")
#: The same rule as a JSON-Schema ``pattern`` (for API documentation and test generators):
#: a whole string of allowed characters, written with escapes so the schema stays printable.
#: ``$(?!\n)`` is ``$`` in ECMA 262; in Python's ``re`` (which generators such as hypothesis
#: use) a bare ``$`` also matches before a final newline, and they would generate one.
CLEAN_TEXT_PATTERN = (
    "^[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff\\u061c\\u200e\\u200f"
    "\\u202a-\\u202e\\u2066-\\u2069\\u200b-\\u200d\\u2060\\ufeff\\ufffe\\uffff]*$(?!\\n)"
)


def forbidden_position(value: str, *, allow_newlines: bool = False) -> int | None:
    """Index of the first forbidden character in ``value``, or None when it is clean."""
    pattern = _FORBIDDEN_EXCEPT_NEWLINES if allow_newlines else _FORBIDDEN
    match = pattern.search(value)
    return match.start() if match else None


def check_text(value: str, *, field: str, allow_newlines: bool = False) -> str:
    """``value`` unchanged, or ``DomainError(INVALID_CHARACTERS)`` naming the field and position.

    The offending character itself is not echoed (it may be invisible or break the log).
    """
    position = forbidden_position(value, allow_newlines=allow_newlines)
    if position is not None:
        raise DomainError(INVALID_CHARACTERS, details={"field": field, "position": position})
    return value


def check_strings(value: Any, *, field: str, allow_newlines: Iterable[str] = ()) -> None:
    """:func:`check_text` on every string inside ``value`` (nested dicts, lists, keys too).

    ``allow_newlines`` names the dotted field paths that are free text.
    """
    free_text = frozenset(allow_newlines)

    def walk(item: Any, path: str) -> None:
        if isinstance(item, str):
            check_text(item, field=path, allow_newlines=path in free_text)
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if isinstance(key, str):
                    # a bad key is named by where it sits, never echoed (it is the bad text)
                    check_text(key, field=f"{path}.<key>" if path else "<key>")
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(item, list | tuple):
            for index, sub in enumerate(item):
                walk(sub, f"{path}[{index}]")

    walk(value, field)
