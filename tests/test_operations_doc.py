"""docs/operations.md stays true: its settings table is the one the code generates, and
the commands it tells an operator to run exist."""

from __future__ import annotations

import re

import pytest
from cqcommon import runner
from cqdev.settings_doc import BEGIN, END, operations_doc, settings_table


def test_settings_table_matches_the_code() -> None:
    text = operations_doc().read_text(encoding="utf-8")
    between = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert between == settings_table(), "run: python -m cqdev.settings_doc --write"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["dead-letters", "--group", "query.read-model"], "dead-letters"),
        (["dead-letters", "--group", "query.read-model", "--replay", "--limit", "5"], None),
        (["outbox", "status"], "outbox status"),
        (["outbox", "republish", "--since", "2026-11-30T20:00:00+08:00"], "outbox republish"),
    ],
)
def test_operator_commands_in_the_guide_exist(argv: list[str], command: str | None) -> None:
    if command is not None:
        text = operations_doc().read_text(encoding="utf-8")
        assert re.search(r"python -m cq(\w+|<service>) " + re.escape(command), text), command
    args = runner.build_parser("query").parse_args(argv)
    assert args.command == argv[0]
