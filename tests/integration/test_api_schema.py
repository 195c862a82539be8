"""Schemathesis against the real cluster: every operation of the gateway's OpenAPI schema,
fuzzed with positive and negative data, must answer what the schema promises.

Why this shape: schemathesis' runner is synchronous and the in-process services of the
``cluster`` fixture live on the session's event loop, so the loop must keep running while
cases are sent. The test therefore serves a second gateway app (same settings, its own
backends) with uvicorn in a thread on a free port, and drives schemathesis from a worker
thread (``asyncio.to_thread``) while the session loop keeps answering gRPC. Requests go
over real HTTP, as the mini-program's would.

It iterates over the schema, never over a list of endpoints, so every endpoint a later
change adds is fuzzed too. Nothing is excluded. Each operation gets the four default
response checks; failures are collected (deduplicated by operation, check and status)
instead of stopping at the first, so one run lists everything the schema and the
behaviour disagree on.

Bounds (2-core CI machine): ``MAX_EXAMPLES`` generated cases per operation and mode,
no deadline, no shrinking (every failing example is recorded as sent), derandomized, so
the same code always sends the same cases.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import uvicorn
from cqdev.stack import free_port
from cqdev.testing import Cluster, eventually, new_owner, violation_code_record
from cqgateway.app import create_app
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

#: Generated cases per operation and generation mode. 50 keeps the whole run under a
#: minute here; raise it locally (CQ_SCHEMATHESIS_EXAMPLES=500) for a deeper search.
MAX_EXAMPLES = int(os.environ.get("CQ_SCHEMATHESIS_EXAMPLES", "50"))
#: schemathesis' default response checks, named so a new default does not slip in unseen.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
#: A staff call must never hang the run: the gateway's own deadlines are far shorter.
REQUEST_TIMEOUT_S = 15.0


@dataclass
class Report:
    """What the run did: the figures and every distinct failure with one example."""

    operations: list[str] = field(default_factory=list)
    examples: dict[str, int] = field(default_factory=dict)
    #: answers per operation: status code, and the error code of an error answer
    statuses: dict[str, Counter[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    #: examples answered with a declared 501 (planned endpoints)
    planned: dict[str, int] = field(default_factory=dict)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def fail(self, operation: str, check: str, status: str, example: str) -> None:
        self.failures.setdefault((operation, check, status), example)

    def summary(self) -> str:
        lines = [
            f"schemathesis: {len(self.operations)} operations, "
            f"{sum(self.examples.values())} examples, {len(self.failures)} distinct failures, "
            f"{len(self.planned)} operations answering a declared 501",
            *(
                f"  {op}: {self.examples.get(op, 0)} examples, answers "
                + " ".join(
                    f"{status}{'/' + code if code else ''}x{n}"
                    for (status, code), n in sorted(self.statuses[op].items())
                )
                for op in self.operations
            ),
        ]
        for (operation, check, status), example in sorted(self.failures.items()):
            lines.append(f"FAIL {operation} [{check}] status={status}\n     {example}")
        return "\n".join(lines)


def _describe(case: schemathesis.Case[Any], response: Any | None) -> str:
    """One line naming the request (no headers: the token is one) and the answer's start."""
    sent = f"{case.method} {case.formatted_path}"
    if case.query:
        sent += f" query={json.dumps(case.query, ensure_ascii=False, default=str)}"
    if case.body is not None and not isinstance(case.body, NotSet):
        sent += f" body={json.dumps(case.body, ensure_ascii=False, default=str)[:200]}"
    if response is not None:
        sent += f" -> {response.status_code} {response.text[:200]!r}"
    return sent


def _error_code(response: schemathesis.Response) -> str:
    """The stable error code of an error answer (the gateway's envelope), else ""."""
    if response.status_code < 400:
        return ""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"  # not the envelope: response_schema_conformance reports it


def _check_names(failure: Failure) -> str:
    return ",".join(type(failure).checks) or failure.title or type(failure).__name__


def _sender(
    report: Report, label: str, base_url: str, session: requests.Session, headers: dict[str, str]
) -> Callable[[schemathesis.Case[Any]], None]:
    """The body hypothesis runs per case: send it, check the answer, record any failure."""

    def send(case: schemathesis.Case[Any]) -> None:
        report.examples[label] = report.examples.get(label, 0) + 1
        response = None
        try:
            response = case.call(
                base_url=base_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_S
            )
            report.statuses[label][response.status_code, _error_code(response)] += 1
            checks = CHECKS
            if response.status_code == 501 and "501" in case.operation.definition.raw.get(
                "responses", {}
            ):
                # A planned endpoint declares 501 NOT_IMPLEMENTED: that answer is its contract
                # today, not a server fault. Its status, content type and body are still checked.
                checks = [c for c in CHECKS if c is not not_a_server_error]
                report.planned[label] = report.planned.get(label, 0) + 1
            case.validate_response(
                response, checks=checks, headers=headers, transport_kwargs={"base_url": base_url}
            )
        except (Failure, FailureGroup) as exc:
            status = str(response.status_code) if response is not None else "-"
            failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            for failure in failures:
                example = f"{failure.title}: {_describe(case, response)}"
                report.fail(label, _check_names(failure), status, example)
        except requests.RequestException as exc:
            report.fail(label, "transport", "-", f"{type(exc).__name__}: {_describe(case, None)}")

    return send


def fuzz(
    base_url: str, auth_for: Callable[[str], dict[str, str]], openapi: dict[str, Any]
) -> Report:
    """Run every operation of ``openapi`` against ``base_url``; blocking (a worker thread)."""
    schema = schemathesis.openapi.from_dict(openapi)
    report = Report()
    settings = hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        # Failures are recorded, not raised, so there is nothing to shrink: every failing
        # example is reported exactly as it was sent.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        # schemathesis' strategies filter a lot and the cluster is slow next to a unit
        # test; neither says anything about the API.
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                # an operation the loader cannot read is a schema defect, not a skip
                report.fail("(schema)", "schema", "-", repr(result.err()))
                continue
            operation = result.ok()
            report.operations.append(operation.label)
            headers = auth_for(operation.path)
            send = _sender(report, operation.label, base_url, session, headers)
            for mode in MODES:
                strategy = operation.as_strategy(generation_mode=mode, headers=headers)
                try:
                    settings(hypothesis.given(case=strategy)(send))()
                except hypothesis.errors.Unsatisfiable:
                    # e.g. no negative data exists for an operation without inputs
                    continue
    return report


@contextmanager
def served_gateway(cluster: Cluster) -> Iterator[tuple[str, dict[str, Any]]]:
    """A second gateway app on 127.0.0.1:<free port> in its own thread and event loop.

    Same settings as the cluster's (same token secret, database, Redis and services), its
    own backends, opened by its own lifespan. Yields (base URL, its OpenAPI schema).
    """
    app = create_app(cluster.settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="schemathesis-gateway", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", app.openapi()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def seeded_headers(cluster: Cluster) -> tuple[dict[str, str], dict[str, str]]:
    """A registered owner with a recorded violation; (user headers, supervisor headers).

    The owner makes the user's reads non-empty; the supervisor reaches every /internal/v1
    operation (the audit trail is supervisor-only).
    """
    owner = new_owner()
    await cluster.import_records([*owner.records(), violation_code_record()])
    staff = await cluster.staff("super01")
    body = {
        "source_system": "camera-net",
        "source_record_id": f"schema-{owner.vehicle_id[:8]}",
        "plate_type": "02",
        "plate_number": owner.plate_number,
        "violation_code": "1345",
        "occurred_at": "2026-11-01T08:30:00+08:00",
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
    }

    async def recorded() -> bool:
        # 404 until adjudication has consumed the vehicle's registry event
        r = await cluster.http.post("/internal/v1/violations", json=body, headers=staff)
        return r.status_code in (200, 201)

    await eventually(recorded)
    user = await cluster.login(owner.alipay_user_id)

    async def owner_visible() -> bool:
        r = await cluster.http.get("/api/v1/me", headers=user)
        return r.status_code == 200 and bool(r.json().get("vehicles"))

    await eventually(owner_visible)
    return user, staff


async def test_every_operation_answers_as_its_schema_says(
    cluster: Cluster, record_property: Callable[[str, object], None]
) -> None:
    user, staff = await seeded_headers(cluster)

    def auth_for(path: str) -> dict[str, str]:
        # user token on the mini-program API, staff token on the counter API, none elsewhere
        if path.startswith("/api/v1/"):
            return user
        if path.startswith("/internal/v1/"):
            return staff
        return {}

    # a sandbox gateway is ready once a roster load is recorded; this run brings its own data
    await cluster.mark_sandbox_roster_loaded()
    with served_gateway(cluster) as (base_url, openapi):

        async def ready() -> bool:
            try:
                r = await asyncio.to_thread(requests.get, f"{base_url}/readyz", timeout=2)
            except requests.ConnectionError:
                return False  # uvicorn is still binding
            return r.status_code == 200

        await eventually(ready)
        report = await asyncio.to_thread(fuzz, base_url, auth_for, openapi)

    summary = report.summary()
    print(summary)
    record_property("schemathesis_operations", len(report.operations))
    record_property("schemathesis_examples", sum(report.examples.values()))
    record_property("schemathesis_failures", len(report.failures))
    assert report.operations, "the schema lists no operation"
    assert all(report.examples.get(op) for op in report.operations), summary
    # the tokens worked: each API had operations that answered 2xx past authentication
    for prefix in ("/api/v1/", "/internal/v1/"):
        assert any(
            op.split(" ", 1)[1].startswith(prefix)
            and "/auth/" not in op
            and any(200 <= status < 300 for status, _ in report.statuses[op])
            for op in report.operations
        ), f"no authenticated {prefix} operation answered 2xx\n{summary}"
    assert not report.failures, summary
