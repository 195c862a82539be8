"""deploy/observability and docs/operations.md kept true to the code (issue 12): every
metric a rule or a dashboard panel queries is one ``cqcommon.metrics`` defines (a typo would
make an alert that never fires), every alert has a runbook entry its ``runbook_url`` points
at, every metric is documented, and ``promtool`` accepts the rules and passes their unit
tests when it is installed (Debian package ``prometheus``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cqcommon.metrics import METRIC_FAMILIES, exposed_names

ROOT = Path(__file__).resolve().parent.parent
OBSERVABILITY = ROOT / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
DASHBOARD = OBSERVABILITY / "dashboards" / "cqtraffic-overview.json"
OPERATIONS = ROOT / "docs" / "operations.md"

#: a metric name in PromQL: an identifier that is not a function, keyword or label name
_IDENT = re.compile(r"(?<![\w{,=\"$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan",
}  # fmt: skip
#: series Prometheus itself adds to every scrape
_PROMETHEUS_SERIES = {"up"}


def _strip(expr: str) -> str:
    """PromQL without strings, label matchers, durations and template variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return expr


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()
    for match in _IDENT.finditer(_strip(expr)):
        word = match.group(1)
        if word.lower() in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]?", word):
            continue
        names.add(word)
    return names


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", ())]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_metric_names_are_parsed_out_of_promql() -> None:
    expr = (
        'sum by (le, route) (rate(cqtraffic_http_request_duration_seconds_bucket{route!="x"}[5m]))'
        " / on () group_left max(cqtraffic_payments) > 1 and up == 0"
    )
    assert metric_names(expr) == {
        "cqtraffic_http_request_duration_seconds_bucket",
        "cqtraffic_payments",
        "up",
    }


def test_every_metric_the_alerts_use_is_defined_in_the_code() -> None:
    defined = exposed_names() | _PROMETHEUS_SERIES
    for rule in _alerts():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= defined, (rule["alert"], used - defined)


def test_every_metric_the_dashboard_uses_is_defined_in_the_code() -> None:
    defined = exposed_names() | _PROMETHEUS_SERIES
    exprs = _dashboard_exprs()
    assert exprs
    for expr in exprs:
        used = metric_names(expr)
        assert used and used <= defined, (expr, used - defined)


def test_every_defined_metric_is_on_the_dashboard_and_in_the_operations_guide() -> None:
    on_dashboard = set().union(*(metric_names(e) for e in _dashboard_exprs()))
    guide = OPERATIONS.read_text()
    for metric in METRIC_FAMILIES:
        for family in metric.describe():
            series = {n for n in exposed_names() if n.startswith(family.name)}
            assert series & on_dashboard, f"{family.name} is on no dashboard panel"
            documented = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{documented}`" in guide, f"{documented} is not in docs/operations.md"


def test_every_alert_has_a_runbook_entry_its_url_points_at() -> None:
    anchors = _anchors(OPERATIONS.read_text())
    rules = _alerts()
    assert len(rules) >= 10
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md", url
        assert anchor == rule["alert"].lower(), url
        assert anchor in anchors, f"no runbook entry for {rule['alert']}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}


def _promtool() -> str | None:
    """The pinned promtool `make check-deploy` unpacks, else one on PATH."""
    pinned = Path(__file__).resolve().parents[1] / ".tools" / "deploycheck" / "bin" / "promtool"
    return str(pinned) if pinned.exists() else shutil.which("promtool")


@pytest.mark.skipif(
    _promtool() is None,
    reason="promtool is not installed (make check-deploy unpacks it into .tools/deploycheck);"
    " names and anchors are still checked above",
)
def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    promtool = _promtool()
    assert promtool is not None
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", str(OBSERVABILITY / "alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
