"""Read-your-writes on access after a follow starts or ends (issue 10: "after unfollow,
revocation or expiry the former follower gets 404 on that vehicle's violations at once").

The follow service publishes ``FollowStarted`` / ``FollowEnded`` and the query service
applies them asynchronously, usually within milliseconds. A route that has just activated
a follow (SMS code, licence follow) or ended one (unfollow, revocation) therefore waits,
bounded, until the query read model agrees before it answers, so the very next request of
the follower sees the new state:

* a vehicle through ``QueryService.GetRelations`` as the follower: ``followed`` present
  (started) or absent (ended). The read model's cache is invalidated inside the event's
  transaction (``cqquery.adapters.cache``), so once the database agrees the cached list
  agrees too;
* a licence through ``ListViolations(licence_id, page_size 1)`` as the follower: OK once
  it started, ``NOT_FOUND`` once it ended (the answer the follower's next list gets).

The wait polls every ``interval_s`` (20 ms) for at most ``timeout_s`` (3 s). If the read
model has not caught up by then the route still answers success (the follow service has
committed; the event will arrive) and a warning is logged with the follow id only (no
personal data). A probe that fails (the query service is briefly unavailable) counts as
"not yet". A licence the follower also proved (R-Q-1, a proof grant lasts 30 min) stays
visible after an unfollow: that wait runs to its bound, which is correct but slow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol

from cqcommon.errors import DomainError, ErrorKind
from cqcommon.grpc_client import call
from cqtraffic.common.v1.types_pb2 import Caller, PageRequest
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.query.v1 import query_pb2

if TYPE_CHECKING:
    from cqtraffic.query.v1.query_pb2_grpc import QueryServiceAsyncStub

log = logging.getLogger("cqgateway.access_sync")

#: The longest a route waits for the read model (the event will still arrive after it).
WAIT_TIMEOUT_S = 3.0
#: Between two probes: a few milliseconds is the usual lag, so the first probes matter.
POLL_INTERVAL_S = 0.02
#: A probe never gets less than this deadline, even at the very end of the wait.
MIN_PROBE_DEADLINE_S = 0.05

Change = Literal["started", "ended"]


class AccessProbe(Protocol):
    """Asks the read model what one follower sees now (``None``: could not tell)."""

    async def vehicle_followed(
        self, follower: Caller, vehicle_id: str, *, timeout_s: float
    ) -> bool | None: ...

    async def licence_visible(
        self, follower: Caller, licence_id: str, *, timeout_s: float
    ) -> bool | None: ...


class _SubjectProbe(Protocol):
    """One of ``AccessProbe``'s two questions (the subject's id positional)."""

    def __call__(
        self, follower: Caller, subject_id: str, /, *, timeout_s: float
    ) -> Awaitable[bool | None]: ...


class QueryAccessProbe:
    """``AccessProbe`` over the QueryService (every call with a deadline)."""

    def __init__(self, query: QueryServiceAsyncStub) -> None:
        self._query = query

    async def vehicle_followed(
        self, follower: Caller, vehicle_id: str, *, timeout_s: float
    ) -> bool | None:
        request = query_pb2.GetRelationsRequest(caller=follower, vehicle_ids=[vehicle_id])
        try:
            answer = await call(self._query.GetRelations, request, timeout_s=timeout_s)
        except DomainError as exc:
            log.debug("relation probe failed: %s", exc.code)
            return None
        return answer.relations.get(vehicle_id) == "followed"

    async def licence_visible(
        self, follower: Caller, licence_id: str, *, timeout_s: float
    ) -> bool | None:
        request = query_pb2.ListViolationsRequest(
            caller=follower, licence_id=licence_id, page=PageRequest(page_size=1)
        )
        try:
            await call(self._query.ListViolations, request, timeout_s=timeout_s)
        except DomainError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return False
            log.debug("licence probe failed: %s", exc.code)
            return None
        return True


class AccessSync:
    """Waits, bounded, until the read model shows a follow's start or end to its follower."""

    def __init__(
        self,
        probe: AccessProbe,
        *,
        timeout_s: float = WAIT_TIMEOUT_S,
        interval_s: float = POLL_INTERVAL_S,
        probe_deadline_s: float = 2.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._probe = probe
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self._probe_deadline_s = probe_deadline_s
        self._clock = clock
        self._sleep = sleep

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def started(self, follower: Caller, follow: fol.Follow) -> bool:
        """After a follow became active (SMS code confirmed, licence followed)."""
        return await self._follow(
            "started",
            follower,
            follow.follow_id,
            follow.target,
            follow.vehicle_id,
            follow.licence_id,
        )

    async def ended(self, ended: fol.EndFollowResponse) -> bool:
        """After a follow ended (unfollow, revocation): the answer names who lost access."""
        follower = Caller(user_id=ended.follower_user_id, person_id=ended.follower_person_id)
        return await self._follow(
            "ended", follower, ended.follow_id, ended.target, ended.vehicle_id, ended.licence_id
        )

    async def _follow(
        self,
        change: Change,
        follower: Caller,
        follow_id: str,
        target: int,
        vehicle_id: str,
        licence_id: str,
    ) -> bool:
        if not follower.user_id:
            # Access is granted per user id (R-Q-1): without it there is nothing to ask.
            log.warning("follow %s %s: no follower user id to wait for", follow_id, change)
            return False
        wanted = change == "started"
        probe: _SubjectProbe
        if target == fol_events.FOLLOW_TARGET_VEHICLE and vehicle_id:
            probe = self._probe.vehicle_followed
            subject = vehicle_id
        elif target == fol_events.FOLLOW_TARGET_LICENCE and licence_id:
            probe = self._probe.licence_visible
            subject = licence_id
        else:
            log.warning("follow %s %s: no target to wait for", follow_id, change)
            return False

        probes = 0
        began = self._now()

        async def agrees(timeout_s: float) -> bool:
            nonlocal probes
            probes += 1
            return await probe(follower, subject, timeout_s=timeout_s) is wanted

        if await self.wait(agrees):
            log.debug(
                "follow %s %s: the read model agreed after %d probe(s), %.0f ms",
                follow_id,
                change,
                probes,
                (self._now() - began) * 1000,
            )
            return True
        log.warning(
            "follow %s %s: the read model did not agree within %.1fs (the event will arrive)",
            follow_id,
            change,
            self.timeout_s,
        )
        return False

    async def wait(self, agrees: Callable[[float], Awaitable[bool]]) -> bool:
        """Poll ``agrees(deadline_s)`` until it is true or ``timeout_s`` has passed; whether
        it agreed. The first probe goes at once, each probe's deadline ends with the wait."""
        end = self._now() + self.timeout_s
        while True:
            remaining = end - self._now()
            deadline = max(MIN_PROBE_DEADLINE_S, min(self._probe_deadline_s, remaining))
            if await agrees(deadline):
                return True
            remaining = end - self._now()
            if remaining <= 0:
                return False
            await self._sleep(min(self.interval_s, remaining))
