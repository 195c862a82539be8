"""Unit tests of the drills' arithmetic (no servers): what counts as lost, as applied twice,
as failed during the fault, and how the recovery times are taken; and the launcher's split.

Run: ``.venv/bin/pytest bench/drills/test_drillkit.py`` (``bench/`` is outside the suite's
test paths, like the benchmarks themselves).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cqdev.cluster import ChildSpec, GrpcReady
from drillkit import Sample, summarize_requests, tally
from launcher import split_services


def test_every_produced_event_applied_once_is_neither_lost_nor_doubled() -> None:
    t = tally(
        {"e1": "v1", "e2": "v2"},
        {"e1": 1, "e2": 1},
        {0: 1, 1: 1},
        ok_violation_ids={"v1", "v2"},
        failed_seqs=set(),
        recorded_seqs={0, 1},
        unpublished=0,
    )
    assert (t.produced, t.applied, t.lost, t.applied_twice) == (2, 2, 0, 0)


def test_an_event_never_applied_and_a_2xx_without_an_event_are_lost() -> None:
    t = tally(
        {"e1": "v1", "e2": "v2"},
        {"e1": 1},
        {0: 1},
        ok_violation_ids={"v1", "v2", "v3"},
        failed_seqs=set(),
        recorded_seqs={0, 1},
        unpublished=1,
    )
    assert (t.applied, t.lost, t.ok_not_produced) == (1, 2, 1)


def test_a_second_inbox_row_or_read_model_row_counts_as_applied_twice() -> None:
    t = tally(
        {"e1": "v1"},
        {"e1": 2},
        {0: 3},
        ok_violation_ids={"v1"},
        failed_seqs=set(),
        recorded_seqs={0},
        unpublished=0,
    )
    assert t.applied_twice == 1 + 2


def test_a_failed_answer_whose_record_was_stored_is_counted_not_lost() -> None:
    t = tally(
        {"e1": "v1"},
        {"e1": 1},
        {7: 1},
        ok_violation_ids=set(),
        failed_seqs={7, 8},
        recorded_seqs={7},
        unpublished=0,
    )
    assert (t.lost, t.failed_but_recorded) == (0, 1)


def _sample(seq: int, sent: float, status: int, code: str = "", took: float = 0.01) -> Sample:
    return Sample(seq, sent, sent + took, status, code)


def test_requests_are_classified_by_when_they_were_sent() -> None:
    samples = [
        _sample(0, 1.0, 201),
        _sample(6, 9.5, 503, "SERVICE_UNAVAILABLE", took=1.0),
        _sample(1, 10.0, 503, "SERVICE_UNAVAILABLE"),
        _sample(2, 11.0, 0, "client timeout", took=10.0),
        _sample(3, 20.5, 503, "SERVICE_UNAVAILABLE", took=0.5),
        _sample(4, 21.0, 201, took=0.2),
        _sample(5, 22.0, 500, "INTERNAL"),
    ]
    s = summarize_requests(samples, fault_start=10.0, fault_end=20.0)
    assert (s.sent, s.failed, s.sent_during) == (7, 5, 2)
    assert s.failed_before == {"503 SERVICE_UNAVAILABLE": 1}
    assert s.failed_during == {"503 SERVICE_UNAVAILABLE": 1, "client timeout": 1}
    assert s.failed_after == {"503 SERVICE_UNAVAILABLE": 1, "500 INTERNAL": 1}
    assert s.server_errors_500 == 1
    # answers after the fault's end: #2 (a timeout at 21.0), #3 at 21.0, #4 (2xx) at 21.2,
    # #5 at 22.01
    assert s.first_ok_after_s is not None and abs(s.first_ok_after_s - 1.2) < 1e-9
    assert s.last_fail_after_s is not None and abs(s.last_fail_after_s - 2.01) < 1e-9
    assert set(s.latency_ms) == {"before", "during", "after"}


def test_a_fault_that_fails_nothing_has_no_last_failure() -> None:
    s = summarize_requests([_sample(0, 5.0, 201), _sample(1, 15.0, 201)], 4.0, 10.0)
    assert s.failed == 0 and s.last_fail_after_s is None
    assert s.first_ok_after_s is not None


def test_the_launcher_splits_off_the_roles_a_drill_kills() -> None:
    ready = GrpcReady("127.0.0.1:1")
    services = [
        ChildSpec(name, ("py", "-m", f"cq{name}", "run"), ready)
        for name in ("registry", "adjudication", "query")
    ]
    split = {spec.name: spec.argv[-1] for spec in split_services(services)}
    assert split == {
        "registry": "run",
        "adjudication": "serve",
        "adjudication-consume": "consume",
        "query": "serve",
    }


def test_each_split_role_serves_its_metrics_on_a_port_of_its_own() -> None:
    """The launcher gives every service a METRICS_PORT; the roles split off one service
    must not share it (the second process to bind it would die at start)."""
    ready = GrpcReady("127.0.0.1:1")
    services = [
        ChildSpec(name, ("py", "-m", f"cq{name}", "run"), ready, {"METRICS_PORT": "9400"})
        for name in ("adjudication", "query")
    ]
    ports = [spec.env["METRICS_PORT"] for spec in split_services(services)]
    assert len(ports) == 3 and len(set(ports)) == 3
