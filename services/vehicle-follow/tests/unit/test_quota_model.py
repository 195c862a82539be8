"""A Hypothesis stateful test (rule-based state machine) of the follow use cases against a
plain reference model of requests, consent and quotas (R-FOL-2..5, R-FOL-7, R-SMS-1).

Random sequences of: ask to follow (owner on the platform, or by SMS), approve, decline,
enter the right or a wrong code, unfollow, revoke (by the owner or by someone else), time
passing (minutes to a year and more: codes, requests and SMS follows expire), a new year in
Asia/Shanghai and the nightly jobs run on the in-memory unit of work
(``cqfollow.adapters.fake_unit_of_work``). The model predicts every answer (the error code,
and the quota it names) and the state after it; after every step the store must equal the
model, and no user may be over 2 active follows or 3 chances this year, no vehicle over 3
followers (an *overrun*).

CI-sized here (``FOLLOW_MODEL_EXAMPLES`` sequences of up to ``FOLLOW_MODEL_STEPS`` steps);
set them higher for a long run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DomainError
from cqcommon.identifiers import with_vin_check_digit
from cqfollow.adapters.fake_sms import FakeSmsCodes, FakeSmsSender
from cqfollow.adapters.fake_unit_of_work import FakeStore, FakeUnitOfWork, StoredVehicle
from cqfollow.domain.callers import Caller
from cqfollow.domain.follows import PersonRecord, QuotaLimits, RequestState
from cqfollow.service_layer.config import Deps, FollowConfig
from cqfollow.service_layer.follows import list_follows, revoke_follower, unfollow_vehicle
from cqfollow.service_layer.jobs import run_job
from cqfollow.service_layer.requests import (
    approve_request,
    decline_request,
    request_vehicle_follow,
    submit_sms_code,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

EXAMPLES = int(os.environ.get("FOLLOW_MODEL_EXAMPLES", "100"))
STEPS = int(os.environ.get("FOLLOW_MODEL_STEPS", "50"))

LIMITS = QuotaLimits()
REQUEST_TTL = timedelta(hours=72)
CODE_TTL = timedelta(seconds=300)
SMS_FOLLOW_TTL = timedelta(days=365)
MAX_WRONG = 5
DAILY_LIMIT = 10
STEP = timedelta(seconds=61)  # every step: past the SMS resend interval (R-SMS-1)
START = datetime(2026, 12, 20, 4, 0, tzinfo=UTC)  # a new year is near

# more users than a car may have followers, fewer cars than... enough for two at once and a
# third to be refused: small, so that random sequences reach every limit often
USERS = [Caller(user_id=f"20880000000001{n:02d}", person_id=f"u-{n}") for n in range(5)]
# (vehicle id, owner person, owner's user id or None: by SMS)
CARS = [
    ("car-0", "o-0", "2088000000000900"),
    ("car-1", "o-1", "2088000000000901"),
    ("car-2", "o-2", None),
]

T = TypeVar("T")


@dataclass
class MRequest:
    request_id: str
    user: int
    car: int
    sms: bool
    state: str  # "pending", "approved", "declined", "expired", "cancelled"
    expires_at: datetime
    code: str | None = None
    code_expires_at: datetime | None = None
    wrong: int = 0


@dataclass
class MFollow:
    follow_id: str
    user: int
    car: int
    sms: bool
    started_at: datetime
    ended: bool = False

    @property
    def expires_at(self) -> datetime | None:
        return self.started_at + SMS_FOLLOW_TTL if self.sms else None

    def active(self, now: datetime) -> bool:
        return not self.ended and (self.expires_at is None or self.expires_at > now)


@dataclass
class Model:
    """The plain reference: what the rules say should have happened."""

    requests: dict[str, MRequest] = field(default_factory=dict)
    follows: dict[str, MFollow] = field(default_factory=dict)
    sends: dict[tuple[int, str], int] = field(default_factory=dict)  # (car, day) -> count
    locked: dict[int, str] = field(default_factory=dict)  # car -> locked day

    def active_of(self, user: int, now: datetime) -> int:
        return sum(1 for f in self.follows.values() if f.user == user and f.active(now))

    def chances_of(self, user: int, now: datetime) -> int:
        # the model's own calendar (not the domain's year_bounds): the local year of a start
        year = now.astimezone(SHANGHAI).year
        return sum(
            1
            for f in self.follows.values()
            if f.user == user and f.started_at.astimezone(SHANGHAI).year == year
        )

    def followers_of(self, car: int, now: datetime) -> int:
        return sum(1 for f in self.follows.values() if f.car == car and f.active(now))

    def quota_refusal(self, user: int, car: int, now: datetime) -> str | None:
        if self.active_of(user, now) >= LIMITS.max_active:
            return "active_vehicle_follows"
        if self.chances_of(user, now) >= LIMITS.chances_per_year:
            return "chances_this_year"
        if self.followers_of(car, now) >= LIMITS.vehicle_max_followers:
            return "vehicle_followers"
        return None

    def running(self, user: int, car: int) -> MFollow | None:
        return next(
            (f for f in self.follows.values() if (f.user, f.car) == (user, car) and not f.ended),
            None,
        )

    def waiting(self, user: int, car: int, now: datetime) -> MRequest | None:
        return next(
            (
                r
                for r in self.requests.values()
                if (r.user, r.car) == (user, car) and r.state == "pending" and r.expires_at > now
            ),
            None,
        )


def outcome(exc: DomainError | None) -> str:
    if exc is None:
        return "ok"
    if exc.code == "FOLLOW_QUOTA_EXCEEDED":
        return f"quota:{exc.details['quota']}"
    return exc.code


class FollowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = FakeStore()
        self.clock = FixedClock(START)
        self.codes = FakeSmsCodes(daily_limit=DAILY_LIMIT, max_wrong=MAX_WRONG)
        self.sender = FakeSmsSender()
        self.ids = 0
        self.deps = Deps(
            uows=lambda: FakeUnitOfWork(self.store),
            sms_codes=self.codes,
            sms_sender=self.sender,
            sms_outbox=self.sender,
            clock=self.clock,
            config=FollowConfig(limits=LIMITS, request_ttl=REQUEST_TTL),
            new_id=self.new_id,
        )
        self.model = Model()
        for n, caller in enumerate(USERS):
            self.store.persons[caller.person_id] = PersonRecord(
                caller.person_id, f"用户{n}", None, caller.user_id
            )
        for n, (vehicle_id, owner, owner_user) in enumerate(CARS):
            self.store.persons[owner] = PersonRecord(
                owner, f"车主{n}", f"1390000000{n}", owner_user
            )
            vin = with_vin_check_digit(f"LSVAU2180N200000{n}")
            self.store.vehicles[vehicle_id] = StoredVehicle("02", f"渝A1000{n}", vin, owner)

    def teardown(self) -> None:
        self.loop.close()

    def new_id(self) -> str:
        self.ids += 1
        return f"id-{self.ids}"

    def run(self, coro: Coroutine[Any, Any, T]) -> tuple[T | None, DomainError | None]:
        try:
            return self.loop.run_until_complete(coro), None
        except DomainError as exc:
            return None, exc

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def tick(self) -> None:
        self.clock.advance(STEP)
        self.codes.now = self.now  # the code store judges expiry by the same clock

    def owner(self, car: int) -> Caller:
        _, person, user = CARS[car]
        return Caller(user_id=user or "2088000000009999", person_id=person)

    # -- rules -------------------------------------------------------------------------------
    @rule(user=st.integers(0, len(USERS) - 1), car=st.integers(0, len(CARS) - 1))
    def ask(self, user: int, car: int) -> None:
        self.tick()
        now, m = self.now, self.model
        vehicle = self.store.vehicles[CARS[car][0]]
        expected: str
        running = m.running(user, car)
        waiting = m.waiting(user, car, now)
        sms = CARS[car][2] is None
        if (running is not None and running.active(now)) or (
            waiting is not None and not waiting.sms
        ):
            expected = "ALREADY_FOLLOWING"
        elif (quota := m.quota_refusal(user, car, now)) is not None:
            expected = f"quota:{quota}"
        elif sms and self._sms_refused(car):
            expected = "SMS_PHONE_LOCKED"
        else:
            expected = "ok"
        view, exc = self.run(
            request_vehicle_follow(
                self.deps,
                caller=USERS[user],
                plate_type="02",
                plate_number=vehicle.plate_number,
                vin=vehicle.vin[-6:],
            )
        )
        assert outcome(exc) == expected, (outcome(exc), expected)
        if view is None:
            return
        r = view.request
        if waiting is not None:  # a new code for the same request
            assert r.request_id == waiting.request_id
            request = waiting
        else:
            request = MRequest(r.request_id, user, car, sms, "pending", now + REQUEST_TTL)
            m.requests[r.request_id] = request
        if sms:
            request.code = self.codes.code_for(r.request_id)
            request.code_expires_at = now + CODE_TTL
            request.wrong = 0

    def _sms_refused(self, car: int) -> bool:
        """R-SMS-2 as the model counts it: a send past the daily limit locks the phone."""
        day = self.now.astimezone(SHANGHAI).date().isoformat()
        if self.model.locked.get(car) == day:
            return True
        count = self.model.sends.get((car, day), 0) + 1
        self.model.sends[(car, day)] = count
        if count > DAILY_LIMIT:
            self.model.locked[car] = day
            return True
        return False

    def _pending(self, sms: bool) -> list[MRequest]:
        return sorted(
            (r for r in self.model.requests.values() if r.sms is sms and r.state == "pending"),
            key=lambda r: r.request_id,
        )

    def _activation(self, request: MRequest) -> str:
        """What activating the request's follow answers now, per the model."""
        m, now = self.model, self.now
        running = m.running(request.user, request.car)
        if running is not None and running.active(now):
            return "ALREADY_FOLLOWING"
        quota = m.quota_refusal(request.user, request.car, now)
        return f"quota:{quota}" if quota else "ok"

    def _end_lapsed(self, request: MRequest) -> None:
        running = self.model.running(request.user, request.car)
        if running is not None and not running.active(self.now):
            running.ended = True

    def _activate(self, request: MRequest, follow_id: str | None) -> None:
        assert follow_id is not None
        self._end_lapsed(request)
        request.state = "approved"
        self.model.follows[follow_id] = MFollow(
            follow_id, request.user, request.car, request.sms, self.now
        )

    @precondition(lambda self: bool(self._pending(False)))
    @rule(data=st.data(), decline=st.booleans(), by_owner=st.booleans())
    def decide(self, data: st.DataObject, decline: bool, by_owner: bool) -> None:
        self.tick()
        request = data.draw(st.sampled_from(self._pending(False)))
        caller = self.owner(request.car) if by_owner else USERS[request.user]
        use_case = decline_request if decline else approve_request
        view, exc = self.run(use_case(self.deps, caller=caller, request_id=request.request_id))
        if not by_owner:
            expected = "FOLLOW_REQUEST_NOT_FOUND"
        elif request.expires_at <= self.now:
            expected = "FOLLOW_REQUEST_NOT_PENDING"
        else:
            expected = "ok" if decline else self._activation(request)
        assert outcome(exc) == expected, (outcome(exc), expected)
        if expected == "FOLLOW_REQUEST_NOT_PENDING":
            request.state = "expired"
        elif expected == "ok":
            if decline:
                request.state = "declined"
            else:
                assert view is not None
                self._activate(request, view.request.follow_id)

    @precondition(lambda self: bool(self._pending(True)))
    @rule(data=st.data(), right=st.booleans())
    def enter_code(self, data: st.DataObject, right: bool) -> None:
        self.tick()
        request = data.draw(st.sampled_from(self._pending(True)))
        code = request.code or "000000"
        entered = code if right else ("000000" if code != "000000" else "111111")
        view, exc = self.run(
            submit_sms_code(
                self.deps, caller=USERS[request.user], request_id=request.request_id, code=entered
            )
        )
        now = self.now
        if request.expires_at <= now:
            expected = "FOLLOW_REQUEST_NOT_PENDING"
            request.state = "expired"
        elif request.code is None or (request.code_expires_at or now) <= now:
            expected = "SMS_CODE_EXPIRED"
            request.code = None
        elif not right:
            request.wrong += 1
            if request.wrong >= MAX_WRONG:
                expected, request.state, request.code = "SMS_CODE_EXPIRED", "cancelled", None
            else:
                expected = "SMS_CODE_WRONG"
        else:
            request.code = None
            expected = self._activation(request)
            if expected == "ok":
                assert view is not None
                self._activate(request, view.follow.follow_id)
            else:
                self._end_lapsed(request)
                request.state = "cancelled"
        assert outcome(exc) == expected, (outcome(exc), expected)

    def _follows(self) -> list[MFollow]:
        return sorted(self.model.follows.values(), key=lambda f: f.follow_id)

    @precondition(lambda self: bool(self.model.follows))
    @rule(data=st.data(), how=st.sampled_from(["unfollow", "revoke", "stranger"]))
    def end(self, data: st.DataObject, how: str) -> None:
        self.tick()
        follow = data.draw(st.sampled_from(self._follows()))
        if how == "unfollow":
            call = unfollow_vehicle(
                self.deps, caller=USERS[follow.user], follow_id=follow.follow_id
            )
        elif how == "revoke":
            call = revoke_follower(
                self.deps, caller=self.owner(follow.car), follow_id=follow.follow_id
            )
        else:  # another user tries: as if it did not exist
            other = USERS[(follow.user + 1) % len(USERS)]
            call = unfollow_vehicle(self.deps, caller=other, follow_id=follow.follow_id)
        _, exc = self.run(call)
        expected = "ok" if how != "stranger" and not follow.ended else "FOLLOW_NOT_FOUND"
        assert outcome(exc) == expected, (outcome(exc), expected)
        if expected == "ok":
            follow.ended = True

    @rule(
        delta=st.sampled_from(
            [
                timedelta(minutes=4),
                timedelta(hours=2),
                timedelta(hours=80),
                timedelta(days=40),
                timedelta(days=366),
            ]
        )
    )
    def time_passes(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.codes.now = self.now

    @rule()
    def new_year(self) -> None:
        """To 00:00:30 of the next Asia/Shanghai 1 January (still 31 December in UTC)."""
        local = self.now.astimezone(SHANGHAI)
        new_year = datetime(local.year + 1, 1, 1, 0, 0, 30, tzinfo=SHANGHAI)
        self.clock.at = new_year.astimezone(UTC)  # the clock speaks UTC, like the system's
        self.codes.now = self.now

    @rule()
    def nightly_jobs(self) -> None:
        now = self.now
        for job in ("expire_sms_follows", "expire_follow_requests"):
            batch, exc = self.run(run_job(self.deps, job=job, checkpoint="", batch_size=1000))
            assert exc is None and batch is not None and batch.done
        for f in self.model.follows.values():
            if not f.ended and not f.active(now):
                f.ended = True
        for r in self.model.requests.values():
            if r.state == "pending" and r.expires_at <= now:
                r.state = "expired"

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def no_overrun(self) -> None:
        """R-FOL-3/4: never over a quota, whatever the sequence."""
        now = self.now
        year = now.astimezone(SHANGHAI).year
        follows = list(self.store.follows.values())
        for caller in USERS:
            key = f"user:{caller.user_id}"
            mine = [f for f in follows if f.follower_key == key]
            assert sum(1 for f in mine if f.active_at(now)) <= LIMITS.max_active
            this_year = [f for f in mine if f.started_at.astimezone(SHANGHAI).year == year]
            assert len(this_year) <= LIMITS.chances_per_year
        for vehicle_id, _, _ in CARS:
            active = [f for f in follows if f.vehicle_id == vehicle_id and f.active_at(now)]
            assert len(active) <= LIMITS.vehicle_max_followers
        self.store.check_constraints()

    @invariant()
    def store_matches_the_model(self) -> None:
        now = self.now
        store = self.store
        assert set(store.follows) == set(self.model.follows)
        for follow_id, mf in self.model.follows.items():
            f = store.follows[follow_id]
            assert f.active_at(now) == mf.active(now), follow_id
            assert f.started_at == mf.started_at and f.expires_at == mf.expires_at
        assert set(store.requests) == set(self.model.requests)
        for request_id, mr in self.model.requests.items():
            r = store.requests[request_id]
            effective = (
                "pending"
                if r.pending_at(now)
                else ("expired" if r.lapsed_at(now) else r.state.value)
            )
            model_state = "expired" if mr.state == "pending" and mr.expires_at <= now else mr.state
            assert effective == model_state, (request_id, effective, model_state)
            if r.state is RequestState.APPROVED:
                assert r.follow_id in store.follows

    @invariant()
    def overview_agrees(self) -> None:
        now = self.now
        for n, caller in enumerate(USERS):
            o, exc = self.run(list_follows(self.deps, caller=caller))
            assert exc is None and o is not None
            assert o.quota.active == self.model.active_of(n, now)
            assert o.quota.chances_left_this_year == max(
                0, LIMITS.chances_per_year - self.model.chances_of(n, now)
            )


FollowMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_r_fol_quotas_hold_against_the_reference_model = FollowMachine.TestCase
