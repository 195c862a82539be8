"""``cqgateway.access_sync`` without I/O: the bounded wait for the query read model after a
follow starts or ends (issue 10: after unfollow or revocation the former follower gets 404
at once), on a fake clock whose ``sleep`` advances it, and the QueryService probe over a
stub query service (relations and the licence list, failures counted as "not yet").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from cqcommon.errors import NOT_FOUND, SERVICE_UNAVAILABLE, DomainError
from cqgateway.access_sync import MIN_PROBE_DEADLINE_S, AccessSync, QueryAccessProbe
from cqtraffic.common.v1.types_pb2 import Caller
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.query.v1 import query_pb2 as q

FOLLOWER = Caller(user_id="2088000000000004", person_id="p-liu")


class FakeClock:
    """Time that moves only when the waiter sleeps (and, optionally, while a probe runs)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedProbe:
    """Answers each question from a list (the last answer repeats); records the calls."""

    def __init__(self, answers: list[bool | None], clock: FakeClock, cost_s: float = 0.0) -> None:
        self.answers = answers
        self.clock = clock
        self.cost_s = cost_s
        self.calls: list[tuple[str, Caller, str, float]] = []

    def _next(self) -> bool | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def vehicle_followed(
        self, follower: Caller, vehicle_id: str, *, timeout_s: float
    ) -> bool | None:
        self.calls.append(("vehicle", follower, vehicle_id, timeout_s))
        self.clock.now += self.cost_s
        return self._next()

    async def licence_visible(
        self, follower: Caller, licence_id: str, *, timeout_s: float
    ) -> bool | None:
        self.calls.append(("licence", follower, licence_id, timeout_s))
        self.clock.now += self.cost_s
        return self._next()


def sync_of(probe: ScriptedProbe, clock: FakeClock, **kwargs: Any) -> AccessSync:
    return AccessSync(probe, clock=clock, sleep=clock.sleep, **kwargs)


def vehicle_follow(**overrides: Any) -> fol.Follow:
    values: dict[str, Any] = {
        "follow_id": "f-1",
        "target": fol_events.FOLLOW_TARGET_VEHICLE,
        "vehicle_id": "veh-1",
        "consent": "sms",
    }
    return fol.Follow(**(values | overrides))


def ended(**overrides: Any) -> fol.EndFollowResponse:
    values: dict[str, Any] = {
        "follow_id": "f-1",
        "follower_user_id": FOLLOWER.user_id,
        "follower_person_id": FOLLOWER.person_id,
        "target": fol_events.FOLLOW_TARGET_VEHICLE,
        "vehicle_id": "veh-1",
    }
    return fol.EndFollowResponse(**(values | overrides))


# -- the wait ---------------------------------------------------------------------------------------
async def test_a_started_vehicle_follow_waits_until_the_read_model_shows_it() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([False, None, True], clock)
    assert await sync_of(probe, clock).started(FOLLOWER, vehicle_follow()) is True
    assert [c[:3] for c in probe.calls] == [("vehicle", FOLLOWER, "veh-1")] * 3
    assert clock.sleeps == [0.02, 0.02]  # polled every 20 ms, first probe at once


async def test_r_fol_7_an_ended_follow_waits_until_the_former_follower_lost_access() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([True, True, False], clock)
    assert await sync_of(probe, clock).ended(ended()) is True
    # the follower named by the service's answer is asked about, not the caller of the route
    assert {c[1].user_id for c in probe.calls} == {FOLLOWER.user_id}
    assert probe.calls[0][1].person_id == FOLLOWER.person_id
    assert len(probe.calls) == 3


async def test_an_agreeing_read_model_answers_after_one_probe_without_sleeping() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([False], clock)
    assert await sync_of(probe, clock).ended(ended()) is True
    assert len(probe.calls) == 1 and clock.sleeps == []


async def test_the_wait_is_bounded_and_a_timeout_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    probe = ScriptedProbe([True], clock)  # never ends in the read model
    with caplog.at_level(logging.WARNING, logger="cqgateway.access_sync"):
        assert await sync_of(probe, clock, timeout_s=3.0, interval_s=0.02).ended(ended()) is False
    assert clock.now - 100.0 == pytest.approx(3.0)
    assert 140 <= len(probe.calls) <= 152  # ~ 3 s / 20 ms
    assert "follow f-1 ended" in caplog.text and "did not agree" in caplog.text
    assert FOLLOWER.user_id not in caplog.text  # the follow id only, no personal data


async def test_a_failing_probe_counts_as_not_yet() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([None, None, True], clock)
    assert await sync_of(probe, clock).started(FOLLOWER, vehicle_follow()) is True
    assert len(probe.calls) == 3


async def test_each_probe_deadline_ends_with_the_wait() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([None], clock, cost_s=0.4)  # every probe takes 0.4 s
    sync = sync_of(probe, clock, timeout_s=1.0, interval_s=0.02, probe_deadline_s=2.0)
    assert await sync.started(FOLLOWER, vehicle_follow()) is False
    deadlines = [c[3] for c in probe.calls]
    assert deadlines[0] == pytest.approx(1.0)  # never the whole 2 s when 1 s is left
    assert deadlines == sorted(deadlines, reverse=True)
    assert all(d >= MIN_PROBE_DEADLINE_S for d in deadlines)


async def test_a_licence_follow_is_probed_through_the_licence() -> None:
    clock = FakeClock()
    probe = ScriptedProbe([False, True], clock)
    follow = fol.Follow(
        follow_id="f-2",
        target=fol_events.FOLLOW_TARGET_LICENCE,
        licence_id="lic-1",
        consent="none",
    )
    assert await sync_of(probe, clock).started(FOLLOWER, follow) is True
    assert [c[:3] for c in probe.calls] == [("licence", FOLLOWER, "lic-1")] * 2
    probe = ScriptedProbe([True, False], clock)
    done = await sync_of(probe, clock).ended(
        ended(target=fol_events.FOLLOW_TARGET_LICENCE, vehicle_id="", licence_id="lic-1")
    )
    assert done is True and probe.calls[-1][0] == "licence"


@pytest.mark.parametrize(
    "answer",
    [
        ended(follower_user_id=""),
        ended(target=fol_events.FOLLOW_TARGET_UNSPECIFIED),
        ended(vehicle_id=""),
    ],
    ids=["no-follower", "no-target", "no-vehicle"],
)
async def test_nothing_to_wait_for_is_logged_and_asks_nothing(
    answer: fol.EndFollowResponse, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    probe = ScriptedProbe([True], clock)
    with caplog.at_level(logging.WARNING, logger="cqgateway.access_sync"):
        assert await sync_of(probe, clock).ended(answer) is False
    assert probe.calls == [] and "follow f-1 ended" in caplog.text


# -- the QueryService probe ------------------------------------------------------------------------
class StubQuery:
    """QueryService methods answering ``answers[name](request)``; records the requests."""

    def __init__(self, answers: dict[str, Callable[[Any], Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, Any, float]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        async def method(request: Any, *, timeout: float) -> Any:  # noqa: ASYNC109 - a stub's signature
            self.requests.append((name, request, timeout))
            return self.answers[name](request)

        return method


def raising(error: DomainError) -> Callable[[Any], Any]:
    def answer(_request: Any) -> Any:
        raise error

    return answer


@pytest.mark.parametrize(
    ("relations", "expected"),
    [({"veh-1": "followed"}, True), ({"veh-1": "proven"}, False), ({}, False)],
    ids=["followed", "proven-only", "unrelated"],
)
async def test_the_vehicle_probe_asks_get_relations_as_the_follower(
    relations: dict[str, str], expected: bool
) -> None:
    query = StubQuery({"GetRelations": lambda _r: q.GetRelationsResponse(relations=relations)})
    assert (
        await QueryAccessProbe(query).vehicle_followed(  # type: ignore[arg-type]
            FOLLOWER, "veh-1", timeout_s=0.5
        )
        is expected
    )
    name, request, timeout = query.requests[0]
    assert name == "GetRelations" and timeout == 0.5
    assert request.caller == FOLLOWER and list(request.vehicle_ids) == ["veh-1"]


async def test_the_licence_probe_lists_one_violation_as_the_follower() -> None:
    query = StubQuery({"ListViolations": lambda _r: q.ListViolationsResponse()})
    probe = QueryAccessProbe(query)  # type: ignore[arg-type]
    assert await probe.licence_visible(FOLLOWER, "lic-1", timeout_s=0.5) is True
    _, request, _ = query.requests[0]
    assert request.licence_id == "lic-1" and request.page.page_size == 1
    assert request.caller == FOLLOWER
    query.answers["ListViolations"] = raising(DomainError(NOT_FOUND))
    assert await probe.licence_visible(FOLLOWER, "lic-1", timeout_s=0.5) is False


async def test_a_query_service_failure_is_no_answer() -> None:
    down = raising(DomainError(SERVICE_UNAVAILABLE))
    probe = QueryAccessProbe(StubQuery({"GetRelations": down, "ListViolations": down}))  # type: ignore[arg-type]
    assert await probe.vehicle_followed(FOLLOWER, "veh-1", timeout_s=0.5) is None
    assert await probe.licence_visible(FOLLOWER, "lic-1", timeout_s=0.5) is None
