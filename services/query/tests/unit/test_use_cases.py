"""The query use cases (``QueryViews``) on fakes of their ports: no database, no Redis,
no gRPC. Each fake counts what it was asked, so a test can prove not only what a use
case answers but that a foreign id and a missing one cost it the same (R-Q-1), and that
a list asks adjudication one question per page, at most once per caller and version
(R-Q-3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cqcommon import identifiers as ids
from cqcommon.clock import FixedClock
from cqcommon.db import NIL_UUID
from cqcommon.decided import decided_answer
from cqcommon.errors import DomainError
from cqquery.domain.cursor import CursorSigner, Position
from cqquery.domain.masking import Person
from cqquery.domain.model import (
    AccessFacts,
    Caller,
    Kind,
    LicenceRow,
    SubjectAccess,
    VehicleRow,
    ViolationAccess,
    ViolationRow,
)
from cqquery.domain.online_handling import ELIGIBILITY_UNAVAILABLE, Reason
from cqquery.domain.results import (
    ListPage,
    OnlineHandlingHint,
    PageItem,
    RenderedPage,
    ViolationShown,
)
from cqquery.ports import LimitDecision, ListRead, PageKey, PortUnavailableError
from cqquery.service_layer.views import QueryViews

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


# -- fakes -------------------------------------------------------------------------------------
@dataclass
class World:
    """What the fake read model holds."""

    users: dict[str, str] = field(default_factory=dict)  # alipay user id -> person id
    persons: dict[str, Person] = field(default_factory=dict)
    vehicles: dict[str, VehicleRow] = field(default_factory=dict)
    licences: dict[str, LicenceRow] = field(default_factory=dict)
    violations: dict[str, ViolationRow] = field(default_factory=dict)
    follows: list[tuple[str, Kind, str]] = field(default_factory=list)  # (user, kind, id)


class FakeReadModel:
    """Every method is one statement, recorded in ``statements``."""

    def __init__(self, world: World, statements: list[str]) -> None:
        self.world = world
        self.statements = statements

    def _followed(self, user_id: str, kind: Kind, sid: str) -> bool:
        return (user_id, kind, sid) in self.world.follows

    async def person_for_user(self, alipay_user_id: str) -> str | None:
        self.statements.append("person_for_user")
        return self.world.users.get(alipay_user_id)

    async def access_facts(self, kind: Kind, subject_id: str) -> AccessFacts:
        self.statements.append("access_facts")
        owner = self._owner(kind, subject_id)
        if owner is None:
            return AccessFacts(False, None, ())
        followers = tuple(
            (u, None) for u, k, s in self.world.follows if (k, s) == (kind, subject_id)
        )
        return AccessFacts(True, owner, followers)

    def _owner(self, kind: Kind, subject_id: str) -> str | None:
        if kind == "vehicle":
            vehicle = self.world.vehicles.get(subject_id)
            return vehicle.owner_person_id if vehicle else None
        licence = self.world.licences.get(subject_id)
        return licence.person_id if licence else None

    def _subject(self, kind: Kind, sid: str | None, user_id: str) -> SubjectAccess:
        owner = self._owner(kind, sid) if sid else None
        return SubjectAccess(
            kind,
            sid or NIL_UUID,
            owner is not None,
            owner,
            self._followed(user_id, kind, sid or ""),
        )

    async def violation_access(
        self, violation_id: str, *, user_id: str, now: datetime
    ) -> ViolationAccess:
        self.statements.append("violation_access")
        row = self.world.violations.get(violation_id)
        return ViolationAccess(
            row,
            self._subject("vehicle", row.vehicle_id if row else None, user_id),
            self._subject("licence", row.licence_id if row else None, user_id),
        )

    async def person(self, person_id: str) -> Person | None:
        self.statements.append("person")
        return self.world.persons.get(person_id)

    async def vehicles_of(self, person_id: str) -> list[VehicleRow]:
        self.statements.append("vehicles_of")
        return [v for v in self.world.vehicles.values() if v.owner_person_id == person_id]

    async def licences_of(self, person_id: str) -> list[LicenceRow]:
        self.statements.append("licences_of")
        return [lic for lic in self.world.licences.values() if lic.person_id == person_id]

    async def followed_vehicles(self, user_id: str) -> list[VehicleRow]:
        self.statements.append("followed_vehicles")
        return [
            v
            for u, k, v_id in self.world.follows
            if u == user_id and k == "vehicle"
            for v in [self.world.vehicles[v_id]]
        ]

    async def followed_licences(self, user_id: str) -> list[LicenceRow]:
        self.statements.append("followed_licences")
        return [
            lic
            for u, k, l_id in self.world.follows
            if u == user_id and k == "licence"
            for lic in [self.world.licences[l_id]]
        ]

    async def vehicle_by_plate(self, plate_type: str, plate_number: str) -> VehicleRow | None:
        self.statements.append("vehicle_by_plate")
        return next(
            (
                v
                for v in self.world.vehicles.values()
                if (v.plate_type, v.plate_number) == (plate_type, plate_number)
            ),
            None,
        )

    async def licence_by_no(self, licence_no: str) -> LicenceRow | None:
        self.statements.append("licence_by_no")
        return next((x for x in self.world.licences.values() if x.licence_no == licence_no), None)

    async def vehicles_access(
        self, vehicle_ids: Sequence[str], *, user_id: str, now: datetime
    ) -> list[SubjectAccess]:
        self.statements.append("vehicles_access")
        return [
            self._subject("vehicle", vid, user_id)
            for vid in vehicle_ids
            if vid in self.world.vehicles
        ]

    async def violations(
        self,
        kind: Kind,
        subject_id: str,
        *,
        status: str | None,
        after: Position | None,
        limit: int,
    ) -> list[ViolationRow]:
        self.statements.append("violations")
        rows = [
            v
            for v in self.world.violations.values()
            if (v.vehicle_id if kind == "vehicle" else v.licence_id) == subject_id
            and (status is None or v.status == status)
            and (
                after is None
                or (v.occurred_at, v.violation_id) < (after.occurred_at, after.violation_id)
            )
        ]
        rows.sort(key=lambda v: (v.occurred_at, v.violation_id), reverse=True)
        return rows[:limit]


class FakeReaders:
    def __init__(self, world: World) -> None:
        self.world = world
        self.statements: list[str] = []
        self.acquired = 0

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[FakeReadModel]:
        self.acquired += 1
        yield FakeReadModel(self.world, self.statements)


class FakeCache:
    """A versioned cache in a dict; each method is one round trip, recorded."""

    def __init__(self) -> None:
        self.values: dict[tuple[Any, ...], Any] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.grants: set[tuple[str, str, str]] = set()
        self.round_trips: list[str] = []
        self.down = False

    def _version(self, kind: str, sid: str) -> str:
        return str(self.versions.get((kind, sid), 0))

    def changed(self, kind: str, sid: str) -> None:
        """What an applied event does: move the subject's version on."""
        self.versions[(kind, sid)] = self.versions.get((kind, sid), 0) + 1

    def _asker(self, caller: Caller) -> str:
        return (
            f"{self._version('user', caller.user_id)}.{self._version('person', caller.person_id)}"
        )

    async def read_list(
        self, kind: Kind, subject_id: str, key: PageKey, *, for_caller: Caller | None = None
    ) -> ListRead:
        self.round_trips.append("read_list")
        version = self._version(kind, subject_id)
        asker = self._asker(for_caller) if for_caller else None
        who = (for_caller.user_id, for_caller.person_id) if for_caller else None
        own = self.values.get(("own", kind, subject_id, version, who, asker, key))
        return ListRead(
            version,
            self.values.get(("facts", kind, subject_id, version)),
            None if own else self.values.get(("page", kind, subject_id, version, key)),
            asker,
            own,
        )

    async def put_own_page(
        self,
        kind: Kind,
        subject_id: str,
        version: str,
        key: PageKey,
        caller: Caller,
        asker_version: str,
        page: RenderedPage,
    ) -> None:
        self.round_trips.append("put_own_page")
        who = (caller.user_id, caller.person_id)
        self.values[("own", kind, subject_id, version, who, asker_version, key)] = page

    async def put_facts(
        self, kind: Kind, subject_id: str, version: str, facts: AccessFacts
    ) -> None:
        self.round_trips.append("put_facts")
        self.values[("facts", kind, subject_id, version)] = facts

    async def put_page(
        self, kind: Kind, subject_id: str, version: str, key: PageKey, page: RenderedPage
    ) -> None:
        self.round_trips.append("put_page")
        self.values[("page", kind, subject_id, version, key)] = page

    async def proofs(self, user_id: str, subjects: Sequence[tuple[Kind, str]]) -> list[bool]:
        self.round_trips.append("proofs")
        return [(user_id, kind, sid) in self.grants for kind, sid in subjects]

    async def grant_proof(self, user_id: str, kind: Kind, subject_id: str, ttl_s: int) -> None:
        if self.down:
            raise PortUnavailableError("down")
        self.round_trips.append("grant_proof")
        self.grants.add((user_id, kind, subject_id))
        self.changed("user", user_id)


class FakeRenderer:
    """Renders a page as JSON (id, status, amount due, vehicle, disputed[, hint:
    availability, route, reason codes]), so tests can read it back."""

    def render(self, violations: Sequence[ViolationShown]) -> bytes:
        return json.dumps(
            [
                [
                    v.row.violation_id,
                    v.row.status,
                    v.amounts.amount_due_fen,
                    v.row.vehicle_id,
                    v.row.disputed,
                ]
                for v in violations
            ]
        ).encode()

    def items(self, body: bytes) -> list[PageItem]:
        return [PageItem(item[0], item[3], item[1], item[4]) for item in json.loads(body)]

    def with_hints(self, body: bytes, hints: Mapping[str, OnlineHandlingHint]) -> bytes:
        items = json.loads(body)
        for item in items:
            h = hints[item[0]]
            item.append([h.availability, h.route, [r.code for r in h.reasons] or [h.reason_code]])
        return json.dumps(items).encode()


def shown_ids(body: bytes) -> list[str]:
    return [item[0] for item in json.loads(body)]


def shown_hints(page: ListPage) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """The hint of each violation of the page that carries one."""
    return {
        item[0]: (item[5][0], item[5][1], tuple(item[5][2]))
        for item in json.loads(page.body)
        if len(item) > 5
    }


ALLOWED = OnlineHandlingHint("allowed", route="handler")
NO_RELATION = Reason("NO_RELATION", "您与该车辆无关联。", "You are not related to this vehicle.")
OVER_LIMIT = Reason("POINTS_OVER_LIMIT", "记分将超过12分。", "Points would exceed 12.")


class FakeEligibility:
    """Adjudication's answer as a function of the caller's relation to the vehicle: the
    owner may handle, a follower or prover is refused with two reasons, anyone else is
    refused for having no relation; ``down`` answers as the adapter does when it cannot
    ask."""

    def __init__(self) -> None:
        self.asked: list[tuple[Caller, list[str]]] = []
        self.down = False
        self.vehicles: dict[str, str] = {}  # violation id -> vehicle id

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]:
        self.asked.append((caller, violation_ids))
        if self.down:
            return dict.fromkeys(violation_ids, OnlineHandlingHint.unknown(ELIGIBILITY_UNAVAILABLE))
        relations = dict(caller.vehicle_relations)
        answers = {}
        for vid in violation_ids:
            relation = relations.get(self.vehicles.get(vid, ""))
            if relation == "own":
                answers[vid] = ALLOWED
            elif relation is None:
                answers[vid] = refused(NO_RELATION)
            else:
                answers[vid] = refused(NO_RELATION, OVER_LIMIT)
        return answers


def refused(*reasons: Reason) -> OnlineHandlingHint:
    first = reasons[0]
    return OnlineHandlingHint("refused", "counter", first.code, first.zh, first.en, reasons)


class FakeLimiter:
    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.window_s = 60
        self.attempts: dict[str, int] = {}
        self.down = False

    async def attempt(self, key: str, *, now_s: float) -> LimitDecision:
        if self.down:
            raise PortUnavailableError("limiter down")
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] > self.limit:
            return LimitDecision(False, 42.0)
        return LimitDecision(True, 0.0)


@dataclass
class Harness:
    world: World
    readers: FakeReaders
    cache: FakeCache
    eligibility: FakeEligibility
    limiter: FakeLimiter
    views: QueryViews

    def cost(self) -> tuple[int, list[str], list[str], int]:
        """(connections, statements, cache round trips, eligibility questions) so far."""
        return (
            self.readers.acquired,
            list(self.readers.statements),
            list(self.cache.round_trips),
            len(self.eligibility.asked),
        )

    def reset(self) -> None:
        self.readers.acquired = 0
        self.readers.statements.clear()
        self.cache.round_trips.clear()
        self.eligibility.asked.clear()


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Party:
    user_id: str
    person: Person
    vehicle: VehicleRow
    licence: LicenceRow

    @property
    def caller(self) -> Caller:
        return Caller(user_id=self.user_id, person_id=self.person.person_id)


def party(n: int, name: str) -> Party:
    first17 = f"50010119900101{n:03d}"
    id_number = first17 + ids.id_check_char(first17)
    person = Person(f"p-{n}", name, id_number, f"139000{n:05d}")
    vehicle = VehicleRow(
        vehicle_id=f"veh-{n}",
        plate_type="02",
        plate_number=f"渝A1234{n}",
        vin=ids.with_vin_check_digit(f"LSVAB12C0M12345{n:02d}"),
        owner_person_id=person.person_id,
        vehicle_kind="personal_small_car",
        owner=person,
        unhandled_count=0,
        unpaid_count=0,
    )
    licence = LicenceRow(
        licence_id=f"lic-{n}",
        person_id=person.person_id,
        licence_no=person.id_number,
        file_no=f"5001001234{n:02d}",
        licence_class="C1",
        first_issued_on=date(2015, 3, 1),
        points=0,
        status="valid",
        cycle_start=None,
        cycle_end=None,
        holder=person,
        unhandled_count=0,
        unpaid_count=0,
    )
    return Party(f"20880000000000{n:02d}", person, vehicle, licence)


def violation(n: int, owner: Party, *, on_licence: bool = False, day: int = 1) -> ViolationRow:
    return ViolationRow(
        violation_id=f"vio-{n}",
        vehicle_id=owner.vehicle.vehicle_id,
        plate_type="02",
        plate_number=owner.vehicle.plate_number,
        licence_id=owner.licence.licence_id if on_licence else None,
        violation_code="1345",
        description_zh="超速",
        occurred_at=datetime(2026, 11, day, 1, 0, tzinfo=UTC),
        place="重庆市渝中区",
        fine_fen=20_000,
        points=3,
        source="non_site",
        procedure="simple",
        status="unhandled",
        decision_no=None,
        decision_date=None,
        disputed=False,
    )


OWNER, FOLLOWER, PROVER, STRANGER = (
    party(1, "张伟"),
    party(2, "李娜"),
    party(3, "王芳"),
    party(4, "刘洋"),
)


@pytest.fixture
def h() -> Harness:
    world = World()
    for p in (OWNER, FOLLOWER, PROVER, STRANGER):
        world.users[p.user_id] = p.person.person_id
        world.persons[p.person.person_id] = p.person
        world.vehicles[p.vehicle.vehicle_id] = p.vehicle
        world.licences[p.licence.licence_id] = p.licence
    for n, day in ((1, 1), (2, 2), (3, 3)):
        world.violations[f"vio-{n}"] = violation(n, OWNER, day=day)
    ticket = violation(9, OWNER, on_licence=True, day=4)
    world.violations["vio-ticket"] = replace(ticket, violation_id="vio-ticket")
    world.follows.append((FOLLOWER.user_id, "vehicle", OWNER.vehicle.vehicle_id))
    readers, cache = FakeReaders(world), FakeCache()
    cache.grants.add((PROVER.user_id, "licence", OWNER.licence.licence_id))
    eligibility, limiter = FakeEligibility(), FakeLimiter()
    eligibility.vehicles = {vid: v.vehicle_id for vid, v in world.violations.items()}
    views = QueryViews(
        readers=readers,
        cache=cache,
        renderer=FakeRenderer(),
        eligibility=eligibility,
        lookup_limiter=limiter,
        clock=FixedClock(NOW),
        cursors=CursorSigner("unit-test-cursor-key-of-32-bytes-or-more"),
        points_limit=12,
        proof_grant_ttl_s=600,
    )
    return Harness(world, readers, cache, eligibility, limiter, views)


async def not_found(coro: Any) -> dict[str, Any]:
    with pytest.raises(DomainError) as err:
        await coro
    assert err.value.code == "NOT_FOUND"
    return err.value.to_payload()


# -- R-Q-1 detail ---------------------------------------------------------------------------------
async def test_r_q_1_owner_follower_and_prover_see_a_violation_a_stranger_gets_404(
    h: Harness,
) -> None:
    """R-Q-1: own vehicle, followed vehicle, proven licence open a violation's detail;
    a stranger's answer is the very NOT_FOUND a missing id gets."""
    detail = await h.views.get_violation(OWNER.caller, "vio-ticket")
    assert detail.violation.row.violation_id == "vio-ticket"
    assert detail.online_handling == ALLOWED
    assert (await h.views.get_violation(FOLLOWER.caller, "vio-1")).violation.row.place
    # the prover proved the licence, so sees the ticket on it but not a camera record
    assert (await h.views.get_violation(PROVER.caller, "vio-ticket")).violation.row
    foreign = await not_found(h.views.get_violation(PROVER.caller, "vio-1"))
    stranger = await not_found(h.views.get_violation(STRANGER.caller, "vio-ticket"))
    missing = await not_found(h.views.get_violation(STRANGER.caller, "no-such-id"))
    assert foreign == stranger == missing


async def test_r_q_1_foreign_and_missing_detail_cost_the_same_round_trips(h: Harness) -> None:
    """R-Q-1 (no existence oracle by timing): a foreign existing violation and a random
    id take the same connections, statements and cache round trips, and neither asks
    adjudication; a visible one costs the same plus the eligibility question."""
    costs = {}
    for label, caller, vid in (
        ("foreign ticket", STRANGER.caller, "vio-ticket"),
        ("foreign camera", STRANGER.caller, "vio-1"),
        ("missing", STRANGER.caller, "3f1e0c8a-7d7b-4a55-9a8e-1b2c3d4e5f60"),
        ("not a uuid", STRANGER.caller, "x"),
        ("owner", OWNER.caller, "vio-ticket"),
    ):
        h.reset()
        if label == "owner":
            await h.views.get_violation(caller, vid)
        else:
            await not_found(h.views.get_violation(caller, vid))
        costs[label] = h.cost()
    assert costs["foreign ticket"] == costs["missing"] == costs["foreign camera"]
    assert costs["missing"] == costs["not a uuid"]
    assert costs["missing"] == (1, ["violation_access"], ["proofs"], 0)
    assert costs["owner"] == (1, ["violation_access"], ["proofs"], 1)


async def test_staff_see_any_violation_without_an_online_hint(h: Harness) -> None:
    detail = await h.views.get_violation(Caller(staff_id="clerk01"), "vio-1")
    assert detail.online_handling is None
    assert h.eligibility.asked == []


# -- R-Q-1 lists and cursors ----------------------------------------------------------------------
async def test_list_pages_continue_with_the_signed_cursor(h: Harness) -> None:
    """R-Q-1: the owner pages through their vehicle's violations, newest first."""
    first = await h.views.list_violations(
        OWNER.caller, "vehicle", "veh-1", status=None, page_size_requested=2
    )
    assert shown_ids(first.body) == ["vio-ticket", "vio-3"]
    assert first.next_cursor
    second = await h.views.list_violations(
        OWNER.caller,
        "vehicle",
        "veh-1",
        status=None,
        page_size_requested=2,
        cursor=first.next_cursor,
    )
    assert shown_ids(second.body) == ["vio-2", "vio-1"]
    assert second.next_cursor == ""
    unpaid = await h.views.list_violations(
        OWNER.caller, "vehicle", "veh-1", status="handled_unpaid"
    )
    assert shown_ids(unpaid.body) == []


async def test_a_cursor_replayed_by_another_caller_or_list_is_invalid(h: Harness) -> None:
    """Both the owner and the follower may see the vehicle, but the owner's cursor is
    the owner's; and a vehicle list's cursor does not continue a licence list."""
    first = await h.views.list_violations(
        OWNER.caller, "vehicle", "veh-1", status=None, page_size_requested=1
    )
    replays: list[tuple[Caller, Kind, str, str | None]] = [
        (FOLLOWER.caller, "vehicle", "veh-1", None),
        (OWNER.caller, "licence", "lic-1", None),
        (OWNER.caller, "vehicle", "veh-1", "unhandled"),
    ]
    for caller, kind, sid, status in replays:
        with pytest.raises(DomainError) as err:
            await h.views.list_violations(
                caller, kind, sid, status=status, page_size_requested=1, cursor=first.next_cursor
            )
        assert err.value.code == "INVALID_CURSOR"


async def test_a_cached_page_is_shared_signed_per_caller_in_one_round_trip(h: Harness) -> None:
    """The page cache holds the unsigned position; a second caller who may see the
    subject gets the same rows from one cache round trip, no database, and a cursor of
    their own; an event moves the version on and the next read is fresh."""
    mine = await h.views.list_violations(
        OWNER.caller, "vehicle", "veh-1", status=None, page_size_requested=2
    )
    h.reset()
    theirs = await h.views.list_violations(
        FOLLOWER.caller, "vehicle", "veh-1", status=None, page_size_requested=2
    )
    # the page is shared; the follower's hints are their own (one question, then their
    # copy of the page is kept)
    assert h.cost() == (0, [], ["read_list", "put_own_page"], 1)
    assert shown_ids(theirs.body) == shown_ids(mine.body)
    assert theirs.next_cursor != mine.next_cursor
    assert shown_hints(theirs) != shown_hints(mine)
    # the second pages are keyed by the verified position: shared as well
    await h.views.list_violations(
        OWNER.caller,
        "vehicle",
        "veh-1",
        status=None,
        page_size_requested=2,
        cursor=mine.next_cursor,
    )
    await h.views.list_violations(
        FOLLOWER.caller,
        "vehicle",
        "veh-1",
        status=None,
        page_size_requested=2,
        cursor=theirs.next_cursor,
    )
    h.reset()
    await h.views.list_violations(
        FOLLOWER.caller,
        "vehicle",
        "veh-1",
        status=None,
        page_size_requested=2,
        cursor=theirs.next_cursor,
    )
    assert h.cost() == (0, [], ["read_list"], 0)

    h.world.follows.clear()
    h.cache.changed("vehicle", "veh-1")
    await not_found(h.views.list_violations(FOLLOWER.caller, "vehicle", "veh-1", status=None))


async def test_r_q_1_a_strangers_list_is_the_same_404_as_a_missing_subject(h: Harness) -> None:
    foreign = await not_found(
        h.views.list_violations(STRANGER.caller, "vehicle", "veh-1", status=None)
    )
    missing = await not_found(
        h.views.list_violations(STRANGER.caller, "vehicle", "veh-404", status=None)
    )
    assert foreign == missing


# -- R-Q-1 proof lookups and their limit ---------------------------------------------------------
async def test_r_q_1_a_vehicle_lookup_grants_access_and_its_cursor_continues_the_list(
    h: Harness,
) -> None:
    await not_found(h.views.get_violation(STRANGER.caller, "vio-1"))
    found = await h.views.lookup_vehicle(
        STRANGER.caller, plate_type="02", plate_number="渝A12341", vin=OWNER.vehicle.vin[-6:]
    )
    assert found.vehicle is not None and found.vehicle.relation == "proven"
    assert found.vehicle.vehicle.vin == "*" * 11 + OWNER.vehicle.vin[-6:]  # R-Q-4
    assert shown_ids(found.page.body) == ["vio-ticket", "vio-3", "vio-2", "vio-1"]
    assert (await h.views.get_violation(STRANGER.caller, "vio-1")).violation.row


async def test_lookups_are_limited_and_refused_when_the_limiter_is_down(h: Harness) -> None:
    """R-Q-1: every attempt counts, right or wrong; past the limit RATE_LIMITED with how
    long to wait; a limiter that cannot count refuses (fail closed) before any read."""
    wrong = {"plate_type": "02", "plate_number": "渝A12341", "vin": "000000"}
    for _ in range(h.limiter.limit):
        await not_found(h.views.lookup_vehicle(STRANGER.caller, **wrong))
    with pytest.raises(DomainError) as err:
        await h.views.lookup_vehicle(STRANGER.caller, **wrong | {"vin": OWNER.vehicle.vin[-6:]})
    assert err.value.code == "RATE_LIMITED"
    assert err.value.details == {"retry_after_s": 42.0, "limit": 3, "window_s": 60}

    h.limiter.down = True
    h.reset()
    with pytest.raises(DomainError) as err:
        await h.views.lookup_licence(
            PROVER.caller,
            name=OWNER.person.name,
            licence_no=OWNER.licence.licence_no,
            file_no=OWNER.licence.file_no,
        )
    assert err.value.code == "SERVICE_UNAVAILABLE"
    assert h.readers.statements == [], "refused before reading anything"


# -- R-Q-4 masking through get_me -----------------------------------------------------------------
async def test_r_q_4_get_me_shows_own_data_in_full_and_followed_owners_masked(h: Harness) -> None:
    h.world.follows.append((FOLLOWER.user_id, "licence", OWNER.licence.licence_id))
    me = await h.views.get_me(FOLLOWER.caller)
    assert me.person == FOLLOWER.person
    assert [v.vehicle.vin for v in me.vehicles] == [FOLLOWER.vehicle.vin]
    assert me.licence is not None and me.licence.licence.licence_no == FOLLOWER.person.id_number
    (vehicle,) = me.followed_vehicles
    assert vehicle.relation == "followed"
    assert vehicle.vehicle.vin == "*" * 11 + OWNER.vehicle.vin[-6:]
    assert vehicle.vehicle.owner == Person(
        OWNER.person.person_id,
        "张*",
        OWNER.person.id_number[:4] + "*" * 10 + OWNER.person.id_number[-4:],
        OWNER.person.phone[:3] + "****" + OWNER.person.phone[-4:],
    )
    (licence,) = me.followed_licences
    assert licence.licence.licence_no == vehicle.vehicle.owner.id_number
    assert licence.licence.file_no == "*" * 8 + OWNER.licence.file_no[-4:]
    assert licence.licence.holder is not None and licence.licence.holder.name == "张*"


async def test_with_person_resolves_a_token_issued_before_the_registry_record(h: Harness) -> None:
    """R-USR-1: a token without a person id gets it from the read model once known."""
    caller = await h.views.with_person(Caller(user_id=OWNER.user_id))
    assert caller.person_id == OWNER.person.person_id
    staff = Caller(staff_id="clerk01")
    assert await h.views.with_person(staff) is staff


async def test_counter_reads_are_staff_only_and_page_with_their_own_cursor(h: Harness) -> None:
    """R-USR-2: staff see the full record; a user is FORBIDDEN; the counter cursor does
    not continue the user list."""
    clerk = Caller(staff_id="clerk01", staff_role="clerk")
    found = await h.views.staff_get_vehicle(
        clerk, plate_type="02", plate_number="渝A12341", page_size_requested=3
    )
    assert found.vehicle is not None and found.vehicle.vehicle.vin == OWNER.vehicle.vin
    assert found.vehicle.vehicle.owner == OWNER.person
    nxt = await h.views.staff_get_vehicle(
        clerk,
        plate_type="02",
        plate_number="渝A12341",
        page_size_requested=3,
        cursor=found.page.next_cursor,
    )
    assert shown_ids(nxt.page.body) == ["vio-1"]
    with pytest.raises(DomainError) as err:
        await h.views.list_violations(
            clerk,
            "vehicle",
            "veh-1",
            status=None,
            page_size_requested=3,
            cursor=found.page.next_cursor,
        )
    assert err.value.code == "INVALID_CURSOR"
    with pytest.raises(DomainError) as err:
        await h.views.staff_get_vehicle(OWNER.caller, plate_type="02", plate_number="渝A12341")
    assert err.value.code == "FORBIDDEN"


# -- R-Q-3 the online-handling hint on every list item ---------------------------------------
async def test_r_q_3_every_item_of_a_list_page_carries_the_hint_from_one_question(
    h: Harness,
) -> None:
    """R-Q-3: one question for the whole page, with the caller's relation to the vehicle
    (so adjudication need not ask back); each item gets its own answer."""
    page = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    ((asker, asked),) = h.eligibility.asked
    assert asked == shown_ids(page.body) == ["vio-ticket", "vio-3", "vio-2", "vio-1"]
    assert asker.vehicle_relations == (("veh-1", "own"),)
    assert shown_hints(page) == dict.fromkeys(asked, ("allowed", "handler", ("",)))

    follower = await h.views.list_violations(FOLLOWER.caller, "vehicle", "veh-1", status=None)
    assert h.eligibility.asked[-1][0].vehicle_relations == (("veh-1", "followed"),)
    # every failing rule is relayed, not only the first
    assert shown_hints(follower)["vio-1"] == (
        "refused",
        "counter",
        ("NO_RELATION", "POINTS_OVER_LIMIT"),
    )


async def test_r_q_3_cached_hints_are_per_caller_and_move_on_with_either_version(
    h: Harness,
) -> None:
    """A caller's hints are reused from the same round trip as the page, never served to
    another caller, and asked again once the subject, the caller's person (their licence)
    or the caller's user (their follows and proofs) changed."""
    first = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    h.reset()
    again = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    assert h.cost() == (0, [], ["read_list"], 0)
    assert again == first

    # another caller who may see the vehicle gets their own answers, asked for them
    h.reset()
    theirs = await h.views.list_violations(FOLLOWER.caller, "vehicle", "veh-1", status=None)
    assert h.cost()[3] == 1 and h.eligibility.asked[-1][0].user_id == FOLLOWER.user_id
    assert shown_ids(theirs.body) == shown_ids(first.body)
    assert shown_hints(theirs) != shown_hints(first)

    for kind, sid in (
        ("vehicle", "veh-1"),
        ("person", OWNER.person.person_id),
        ("user", OWNER.user_id),
    ):
        h.cache.changed(kind, sid)
        h.reset()
        await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
        assert h.cost()[3] == 1, f"a new {kind} version asks again"
        h.reset()
        await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
        assert h.cost()[3] == 0, "and caches the new answer"


async def test_r_q_3_adjudication_down_lists_unknown_hints_and_caches_nothing(h: Harness) -> None:
    """If adjudication cannot answer, the list still answers, every item `unknown` with
    the reason; that answer is not cached, so the next read asks again."""
    h.eligibility.down = True
    page = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    assert set(shown_hints(page).values()) == {("unknown", "", ("ELIGIBILITY_UNAVAILABLE",))}
    assert "put_own_page" not in h.cache.round_trips
    h.eligibility.down = False
    h.reset()
    page = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    assert h.cost()[3] == 1
    assert set(shown_hints(page).values()) == {("allowed", "handler", ("",))}


async def test_r_q_3_staff_lists_and_empty_pages_ask_nothing(h: Harness) -> None:
    clerk = Caller(staff_id="clerk01", staff_role="clerk")
    found = await h.views.staff_get_vehicle(clerk, plate_type="02", plate_number="渝A12341")
    assert shown_ids(found.page.body) and shown_hints(found.page) == {}
    empty = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status="handled_unpaid")
    assert shown_ids(empty.body) == []
    assert h.eligibility.asked == []


async def test_r_q_3_a_licence_list_asks_with_each_vehicles_relation(h: Harness) -> None:
    """On a licence's list the vehicles vary: the question carries the caller's relation
    to each (own, followed, proven; none is absent)."""
    h.world.violations["vio-lent"] = replace(
        violation(7, STRANGER, day=5), violation_id="vio-lent", licence_id="lic-1"
    )
    h.eligibility.vehicles["vio-lent"] = STRANGER.vehicle.vehicle_id
    page = await h.views.list_violations(OWNER.caller, "licence", "lic-1", status=None)
    asker, asked = h.eligibility.asked[-1]
    assert asked == ["vio-lent", "vio-ticket"]
    assert asker.vehicle_relations == (("veh-1", "own"),)
    assert shown_hints(page)["vio-lent"] == ("refused", "counter", ("NO_RELATION",))

    # the prover sees the licence; proving the stranger's vehicle too makes it "proven"
    await h.views.list_violations(PROVER.caller, "licence", "lic-1", status=None)
    assert dict(h.eligibility.asked[-1][0].vehicle_relations) == {}
    h.cache.grants.add((PROVER.user_id, "vehicle", STRANGER.vehicle.vehicle_id))
    h.cache.changed("user", PROVER.user_id)  # what a grant does (adapters.cache)
    await h.views.list_violations(PROVER.caller, "licence", "lic-1", status=None)
    assert h.eligibility.asked[-1][0].vehicle_relations == (("veh-4", "proven"),)


async def test_r_q_3_the_lookups_first_page_carries_hints(h: Harness) -> None:
    found = await h.views.lookup_vehicle(
        STRANGER.caller, plate_type="02", plate_number="渝A12341", vin=OWNER.vehicle.vin[-6:]
    )
    assert h.eligibility.asked[-1][0].vehicle_relations == (("veh-1", "proven"),)
    assert set(shown_hints(found.page)) == set(shown_ids(found.page.body))


async def test_r_q_3_the_detail_asks_with_the_callers_relation_to_its_vehicle(h: Harness) -> None:
    await h.views.get_violation(FOLLOWER.caller, "vio-1")
    assert h.eligibility.asked[-1] == (
        FOLLOWER.caller.asking_about({"veh-1": "followed"}),
        ["vio-1"],
    )
    # the prover sees the ticket through the licence, not the vehicle: no relation to it
    detail = await h.views.get_violation(PROVER.caller, "vio-ticket")
    assert h.eligibility.asked[-1][0].vehicle_relations == ()
    assert detail.online_handling == refused(NO_RELATION)


@pytest.mark.parametrize("disputed", [False, True], ids=["undisputed", "disputed"])
@pytest.mark.parametrize("status", ["handled_unpaid", "paid"])
async def test_r_q_3_a_decided_violations_detail_answers_from_its_row_without_asking(
    h: Harness, status: str, disputed: bool
) -> None:
    """A handled or paid violation's hint is its record's, the same for every caller
    (cqcommon.decided, as adjudication answers it): the detail gives it from the row it
    shows, every reason with its sentences, and asks adjudication nothing."""
    answer = decided_answer(status, disputed=disputed)
    assert answer is not None
    codes = [spec.code for spec in answer.reasons]
    h.world.violations["vio-1"] = replace(
        h.world.violations["vio-1"], status=status, disputed=disputed
    )
    for caller in (OWNER.caller, FOLLOWER.caller):
        detail = await h.views.get_violation(caller, "vio-1")
        hint = detail.online_handling
        assert hint is not None
        assert (hint.availability, hint.route) == ("refused", answer.route)
        assert [r.code for r in hint.reasons] == codes
        assert (hint.reason_code, hint.reason_zh) == (codes[0], hint.reasons[0].zh)
        assert all(r.zh and r.en for r in hint.reasons)
    assert h.eligibility.asked == []
    # an open one is still adjudication's to answer
    await h.views.get_violation(OWNER.caller, "vio-2")
    assert [ids for _, ids in h.eligibility.asked] == [["vio-2"]]


async def test_r_q_3_a_lists_decided_items_answer_from_their_records_and_only_open_ones_are_asked(
    h: Harness,
) -> None:
    """On a list as on the detail, a handled or paid violation's hint is its record's
    (cqcommon.decided): the one question per page names only the open violations, and a
    page with none asks adjudication nothing; the licence list asks the caller's relation
    only to the vehicles of open violations."""
    h.world.violations["vio-1"] = replace(h.world.violations["vio-1"], status="paid")
    h.world.violations["vio-3"] = replace(
        h.world.violations["vio-3"], status="handled_unpaid", disputed=True
    )
    page = await h.views.list_violations(OWNER.caller, "vehicle", "veh-1", status=None)
    ((_, asked),) = h.eligibility.asked
    assert asked == ["vio-ticket", "vio-2"]
    hints = shown_hints(page)
    for vid, status, disputed in (("vio-1", "paid", False), ("vio-3", "handled_unpaid", True)):
        answer = decided_answer(status, disputed=disputed)
        assert answer is not None
        assert hints[vid] == ("refused", answer.route, tuple(r.code for r in answer.reasons))
    assert hints["vio-2"] == ("allowed", "handler", ("",))

    # every item decided: no question at all, and the caller's copy is still kept
    for vid in ("vio-2", "vio-ticket"):
        h.world.violations[vid] = replace(h.world.violations[vid], status="handled_unpaid")
    h.cache.changed("vehicle", "veh-1")
    h.reset()
    page = await h.views.list_violations(FOLLOWER.caller, "vehicle", "veh-1", status=None)
    assert h.eligibility.asked == [] and set(shown_hints(page)) == set(shown_ids(page.body))
    assert "put_own_page" in h.cache.round_trips

    # a licence list of decided violations only: no relations asked either
    h.cache.changed("licence", "lic-1")
    h.reset()
    await h.views.list_violations(OWNER.caller, "licence", "lic-1", status=None)
    assert h.eligibility.asked == []
    assert "vehicles_access" not in h.readers.statements


# -- R-Q-1 for adjudication: GetRelations --------------------------------------------------------
async def test_r_q_1_vehicle_relations_own_followed_proven_and_none(h: Harness) -> None:
    """GetRelations: own, followed and proven vehicles are named; another's vehicle, a
    missing one and a malformed id are simply absent; one statement, and the proof
    grants asked in one round trip only for what is neither owned nor followed."""
    asked = ["veh-1", "veh-2", "veh-3", "veh-404", "not-an-id", "veh-1"]
    h.cache.grants.add((FOLLOWER.user_id, "vehicle", "veh-3"))
    assert await h.views.vehicle_relations(FOLLOWER.caller, asked) == {
        "veh-1": "followed",
        "veh-2": "own",
        "veh-3": "proven",
    }
    assert h.cost() == (1, ["vehicles_access"], ["proofs"], 0)
    h.reset()
    assert await h.views.vehicle_relations(OWNER.caller, ["veh-1"]) == {"veh-1": "own"}
    assert h.cost() == (1, ["vehicles_access"], [], 0)
    assert await h.views.vehicle_relations(STRANGER.caller, ["veh-1", "veh-2"]) == {}
    clerk = Caller(staff_id="clerk01", staff_role="clerk")
    assert await h.views.vehicle_relations(clerk, ["veh-1"]) == {}


async def test_r_q_1_vehicle_relations_refuses_more_than_a_page_of_ids(h: Harness) -> None:
    with pytest.raises(DomainError) as err:
        await h.views.vehicle_relations(OWNER.caller, [f"veh-{n}" for n in range(101)])
    assert err.value.code == "VALIDATION_FAILED"
    assert err.value.details == {"field": "vehicle_ids", "max": 100}
    assert await h.views.vehicle_relations(OWNER.caller, ["veh-1"] * 101) == {"veh-1": "own"}
