"""An in-memory unit of work of the follow use cases (cosmicpython's fake), for unit tests
and stateful model runs without a database: a ``FakeStore`` holding every table, a
``FakeUnitOfWork`` per transaction (a snapshot taken on entry is restored unless
``commit()`` was called, so a refused request provably writes nothing).

The fakes keep the database's promises the use cases rely on: one running follow per
(follower, vehicle) and (follower, licence), one waiting request per (requester, vehicle)
(``check_constraints`` asserts them on every write). Every repository call is logged by
name in ``FakeStore.calls``, so a test can compare the paths of two requests ("wrong VIN"
and "no such vehicle" run the same queries). There is no concurrency here: R-FOL-6 is
proven on PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cqcommon.unit_of_work import SnapshotUnitOfWork

from cqfollow.domain.events import DomainEvent
from cqfollow.domain.follows import (
    EndReason,
    Follow,
    FollowerRow,
    FollowRequest,
    FollowRow,
    LicenceRecord,
    PersonRecord,
    RequestRow,
    RequestState,
    Target,
    VehicleQuotaUse,
    VehicleRecord,
)


@dataclasses.dataclass(frozen=True)
class StoredVehicle:
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: str


@dataclasses.dataclass(frozen=True)
class StoredLicence:
    person_id: str
    licence_no: str
    file_no: str


class FakeStore:
    """Every table of the follow schema, in memory."""

    TABLES = ("persons", "vehicles", "licences", "quota_rows", "follows", "requests")

    def __init__(self) -> None:
        self.persons: dict[str, PersonRecord] = {}
        self.vehicles: dict[str, StoredVehicle] = {}
        self.licences: dict[str, StoredLicence] = {}
        self.quota_rows: set[str] = set()
        self.follows: dict[str, Follow] = {}
        self.requests: dict[str, FollowRequest] = {}
        #: what reached the outbox (committed events only)
        self.outbox: list[DomainEvent] = []
        self.calls: list[str] = []
        self.commits = 0

    def snapshot(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self, name)) for name in self.TABLES}

    def restore(self, snap: Mapping[str, Any]) -> None:
        for name, value in snap.items():
            setattr(self, name, value)

    def check_constraints(self) -> None:
        running = [
            (f.follower_key, f.target, f.vehicle_id or f.licence_id)
            for f in self.follows.values()
            if f.ended_at is None
        ]
        assert len(running) == len(set(running)), "two running follows of one subject"
        waiting = [
            (r.requester_user_id, r.vehicle_id) for r in self.requests.values() if r.state.pending
        ]
        assert len(waiting) == len(set(waiting)), "two waiting requests of one vehicle"

    def events(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.outbox if isinstance(e, kind)]

    def vehicle_record(self, vehicle_id: str) -> VehicleRecord | None:
        v = self.vehicles.get(vehicle_id)
        if v is None:
            return None
        owner = self.persons.get(v.owner_person_id)
        return VehicleRecord(
            vehicle_id=vehicle_id,
            plate_type=v.plate_type,
            plate_number=v.plate_number,
            vin=v.vin,
            owner_person_id=v.owner_person_id,
            owner_name=owner.name if owner else None,
            owner_phone=owner.phone if owner else None,
            owner_user_id=owner.alipay_user_id if owner else None,
        )

    def name_of(self, person_id: str | None) -> str | None:
        person = self.persons.get(person_id or "")
        return person.name if person else None


class FakeRegistry:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def vehicles_by_plate(self, plate_type: str, plate_number: str) -> list[VehicleRecord]:
        self.s.calls.append("registry.vehicles_by_plate")
        ids = sorted(
            i
            for i, v in self.s.vehicles.items()
            if (v.plate_type, v.plate_number) == (plate_type, plate_number)
        )
        return [r for i in ids if (r := self.s.vehicle_record(i)) is not None]

    async def vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        self.s.calls.append("registry.vehicle")
        return self.s.vehicle_record(vehicle_id)

    async def lock_vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        self.s.calls.append("registry.lock_vehicle")
        return self.s.vehicle_record(vehicle_id)

    async def licence_by_number(self, licence_no: str) -> LicenceRecord | None:
        self.s.calls.append("registry.licence_by_number")
        for licence_id, lic in sorted(self.s.licences.items()):
            if lic.licence_no == licence_no:
                holder = self.s.persons.get(lic.person_id)
                return LicenceRecord(
                    licence_id=licence_id,
                    person_id=lic.person_id,
                    licence_no=lic.licence_no,
                    file_no=lic.file_no,
                    holder_name=holder.name if holder else "",
                    holder_user_id=holder.alipay_user_id if holder else None,
                )
        return None

    async def person(self, person_id: str) -> PersonRecord | None:
        self.s.calls.append("registry.person")
        return self.s.persons.get(person_id)


class FakeFollows:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    def _active(self, now: datetime) -> list[Follow]:
        return [f for f in self.s.follows.values() if f.active_at(now)]

    async def lock_follower(self, follower_key: str, *, now: datetime) -> None:
        self.s.calls.append("follows.lock_follower")
        self.s.quota_rows.add(follower_key)

    async def add(self, follow: Follow) -> None:
        self.s.calls.append("follows.add")
        assert follow.follow_id not in self.s.follows
        self.s.follows[follow.follow_id] = follow
        self.s.check_constraints()

    async def running_of(self, follower_key: str, target: Target, subject_id: str) -> Follow | None:
        self.s.calls.append("follows.running_of")
        return next(
            (
                f
                for f in self.s.follows.values()
                if f.follower_key == follower_key
                and f.target is target
                and (f.vehicle_id or f.licence_id) == subject_id
                and f.ended_at is None
            ),
            None,
        )

    async def vehicle_quota_use(
        self,
        *,
        follower_key: str,
        vehicle_id: str | None,
        now: datetime,
        year: tuple[datetime, datetime],
    ) -> VehicleQuotaUse:
        self.s.calls.append("follows.vehicle_quota_use")
        mine = [
            f
            for f in self.s.follows.values()
            if f.follower_key == follower_key and f.target is Target.VEHICLE
        ]
        return VehicleQuotaUse(
            active=sum(1 for f in mine if f.active_at(now)),
            chances_used=sum(1 for f in mine if year[0] <= f.started_at < year[1]),
            vehicle_followers=sum(
                1 for f in self._active(now) if vehicle_id and f.vehicle_id == vehicle_id
            ),
        )

    async def active_licence_follows(self, follower_key: str, *, now: datetime) -> int:
        return sum(
            1
            for f in self._active(now)
            if f.follower_key == follower_key and f.target is Target.LICENCE
        )

    def _end(self, follow: Follow, reason: str, now: datetime) -> Follow:
        ended = follow.ended(reason=EndReason(reason), at=now)
        self.s.follows[follow.follow_id] = ended
        return ended

    async def end_for_follower(
        self, follow_id: str, *, follower_key: str, target: Target, reason: str, now: datetime
    ) -> Follow | None:
        f = self.s.follows.get(follow_id)
        if f is None or f.follower_key != follower_key or f.target is not target or f.ended_at:
            return None
        return self._end(f, reason, now)

    async def end_for_owner(
        self, follow_id: str, *, owner_person_id: str, reason: str, now: datetime
    ) -> Follow | None:
        f = self.s.follows.get(follow_id)
        if f is None or f.target is not Target.VEHICLE or f.ended_at is not None:
            return None
        vehicle = self.s.vehicles.get(f.vehicle_id or "")
        if vehicle is None or vehicle.owner_person_id != owner_person_id:
            return None
        return self._end(f, reason, now)

    async def end_lapsed(self, follow_id: str, *, now: datetime) -> Follow | None:
        f = self.s.follows.get(follow_id)
        if f is None or f.ended_at is not None or f.expires_at is None or f.expires_at > now:
            return None
        return self._end(f, EndReason.EXPIRED.value, now)

    async def follows_of(self, follower_key: str, *, now: datetime) -> list[FollowRow]:
        rows = []
        for f in sorted(self._active(now), key=lambda f: (f.started_at, f.follow_id)):
            if f.follower_key != follower_key:
                continue
            v = self.s.vehicles.get(f.vehicle_id or "")
            lic = self.s.licences.get(f.licence_id or "")
            rows.append(
                FollowRow(
                    f,
                    v.plate_number if v else "",
                    v.plate_type if v else "",
                    (self.s.name_of(lic.person_id) or "") if lic else "",
                )
            )
        return rows

    async def followers_of(self, owner_person_id: str, *, now: datetime) -> list[FollowerRow]:
        rows = []
        for f in sorted(self._active(now), key=lambda f: (f.started_at, f.follow_id)):
            v = self.s.vehicles.get(f.vehicle_id or "")
            if v is not None and v.owner_person_id == owner_person_id:
                rows.append(FollowerRow(f, v.plate_number, self.s.name_of(f.follower_person_id)))
        return rows

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Follow]:
        rows = sorted(
            (
                f
                for f in self.s.follows.values()
                if f.ended_at is None and f.expires_at is not None and f.expires_at <= now
            ),
            key=lambda f: (f.expires_at or now, f.follow_id),
        )
        if after is not None:
            rows = [f for f in rows if (f.expires_at or now, f.follow_id) > after]
        return rows[:limit]


class FakeRequests:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, request: FollowRequest) -> None:
        self.s.calls.append("requests.add")
        assert request.request_id not in self.s.requests
        self.s.requests[request.request_id] = request
        self.s.check_constraints()

    async def get_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        self.s.calls.append("requests.get_for_requester")
        r = self.s.requests.get(request_id)
        return r if r is not None and r.requester_user_id == requester_user_id else None

    async def lock_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        self.s.calls.append("requests.lock_for_requester")
        r = self.s.requests.get(request_id)
        return r if r is not None and r.requester_user_id == requester_user_id else None

    async def lock_for_owner(self, request_id: str, owner_person_id: str) -> FollowRequest | None:
        self.s.calls.append("requests.lock_for_owner")
        r = self.s.requests.get(request_id)
        return r if r is not None and r.owner_person_id == owner_person_id else None

    async def pending_of(self, requester_user_id: str, vehicle_id: str) -> FollowRequest | None:
        self.s.calls.append("requests.pending_of")
        return next(
            (
                r
                for r in self.s.requests.values()
                if r.requester_user_id == requester_user_id
                and r.vehicle_id == vehicle_id
                and r.state.pending
            ),
            None,
        )

    async def save(self, request: FollowRequest) -> None:
        self.s.calls.append("requests.save")
        assert request.request_id in self.s.requests
        self.s.requests[request.request_id] = request
        self.s.check_constraints()

    def _row(self, r: FollowRequest) -> RequestRow:
        v = self.s.vehicles.get(r.vehicle_id)
        return RequestRow(
            r,
            v.plate_number if v else "",
            v.plate_type if v else "",
            self.s.name_of(r.requester_person_id),
        )

    async def row_of(self, request: FollowRequest) -> RequestRow:
        return self._row(request)

    async def incoming(self, owner_person_id: str, *, now: datetime) -> list[RequestRow]:
        return [
            self._row(r)
            for r in sorted(self.s.requests.values(), key=lambda r: (r.created_at, r.request_id))
            if r.owner_person_id == owner_person_id
            and r.state is RequestState.PENDING_OWNER_APPROVAL
            and r.expires_at > now
        ]

    async def waiting_of(self, requester_user_id: str, *, now: datetime) -> list[RequestRow]:
        return [
            self._row(r)
            for r in sorted(self.s.requests.values(), key=lambda r: (r.created_at, r.request_id))
            if r.requester_user_id == requester_user_id and r.pending_at(now)
        ]

    async def expire(self, request_id: str, *, now: datetime) -> bool:
        r = self.s.requests.get(request_id)
        if r is None or not r.lapsed_at(now):
            return False
        self.s.requests[request_id] = dataclasses.replace(
            r, state=RequestState.EXPIRED, decided_at=now, sms_resend_at=None
        )
        return True

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[FollowRequest]:
        rows = sorted(
            (r for r in self.s.requests.values() if r.lapsed_at(now)),
            key=lambda r: (r.expires_at, r.request_id),
        )
        if after is not None:
            rows = [r for r in rows if (r.expires_at, r.request_id) > after]
        return rows[:limit]


class FakeUnitOfWork(SnapshotUnitOfWork[DomainEvent]):
    """One transaction on the store: rolled back (snapshot restored) unless committed."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.store: FakeStore = store
        self.registry = FakeRegistry(store)
        self.follows = FakeFollows(store)
        self.requests = FakeRequests(store)
