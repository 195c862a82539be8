"""Ports (typing.Protocol) the vehicle-follow use cases depend on. Adapters implement them
(PostgreSQL, Redis for SMS codes, the SMS gateways); unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol

# SmsSender (R-SMS-3) is shared with payment, so it is the shared library's; re-exported.
from cqcommon.sms import SmsSender as SmsSender

from cqfollow.domain.events import DomainEvent
from cqfollow.domain.follows import (
    Follow,
    FollowerRow,
    FollowRequest,
    FollowRow,
    LicenceRecord,
    PersonRecord,
    RequestRow,
    Target,
    VehicleQuotaUse,
    VehicleRecord,
)
from cqfollow.domain.sms import CodeCheckResult


class SmsCodes(Protocol):
    """One-time SMS codes kept in Redis with atomic operations (R-SMS-1, R-SMS-2)."""

    async def issue(self, *, phone: str, purpose_id: str, now: datetime) -> str:
        """A fresh code for ``purpose_id`` (a follow request), stored as an HMAC for the code's
        life; any earlier code of that purpose is replaced. Atomic per phone: raises
        ``SmsResendTooSoonError`` within the resend interval of the last send to ``phone``
        and ``SmsPhoneLockedError`` once the phone is over its daily limit (the send that
        passes the limit locks it for the rest of the Asia/Shanghai day). Of 100 concurrent
        calls for one phone exactly one returns a code."""
        ...

    async def release(self, *, phone: str, purpose_id: str) -> None:
        """Undo ``issue`` after the gateway failed to send: the code is dropped and the
        resend interval lifted (the daily count keeps the attempt)."""
        ...

    async def check(self, *, purpose_id: str, code: str) -> CodeCheckResult:
        """Compare an entered code in constant time and atomically: OK uses it up; WRONG
        counts an attempt; the last allowed wrong attempt answers VOID and deletes it."""
        ...


class SentMessage(Protocol):
    """One message the recording SMS adapter kept (R-SMS-3; sandbox only)."""

    @property
    def phone(self) -> str: ...
    @property
    def template_code(self) -> str: ...
    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def sent_at(self) -> datetime: ...


class SmsOutbox(Protocol):
    """What the recording SMS adapter would have sent, newest first (sandbox mode only:
    staff read it so the sandbox walk needs no phone, R-SMS-3)."""

    async def recent(self, phone: str | None, limit: int) -> Sequence[SentMessage]: ...


class RegistryReader(Protocol):
    """The follow service's copy of the registry, read inside a unit of work."""

    async def vehicles_by_plate(self, plate_type: str, plate_number: str) -> list[VehicleRecord]:
        """Every vehicle holding this plate, each with its owner (one query, whatever the
        answer: the caller compares the VIN, R-FOL-1)."""
        ...

    async def vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        """The vehicle with its owner (None also for an id that is not a UUID)."""
        ...

    async def lock_vehicle(self, vehicle_id: str) -> VehicleRecord | None:
        """The vehicle, its row locked until the transaction ends: activations of follows
        of one vehicle queue here (R-FOL-4, R-FOL-6)."""
        ...

    async def licence_by_number(self, licence_no: str) -> LicenceRecord | None:
        """The licence with this number and its holder's name (one query)."""
        ...

    async def person(self, person_id: str) -> PersonRecord | None: ...


class FollowRepository(Protocol):
    """Follows inside one transaction. The database allows one running follow per
    (follower, vehicle) and per (follower, licence), whatever the code does."""

    async def lock_follower(self, follower_key: str, *, now: datetime) -> None:
        """Lock the follower's quota row (created on first use) until the transaction
        ends: one follower's activations queue here (R-FOL-6). Taken before any vehicle
        row, always in that order."""
        ...

    async def add(self, follow: Follow) -> None: ...

    async def running_of(self, follower_key: str, target: Target, subject_id: str) -> Follow | None:
        """The follower's not-ended follow of the vehicle or licence (maybe lapsed)."""
        ...

    async def vehicle_quota_use(
        self,
        *,
        follower_key: str,
        vehicle_id: str | None,
        now: datetime,
        year: tuple[datetime, datetime],
    ) -> VehicleQuotaUse:
        """The follower's active vehicle follows, their vehicle follows started in
        ``year`` (chances spent) and the vehicle's active followers (0 without a
        vehicle), at ``now``."""
        ...

    async def active_licence_follows(self, follower_key: str, *, now: datetime) -> int: ...

    async def end_for_follower(
        self, follow_id: str, *, follower_key: str, target: Target, reason: str, now: datetime
    ) -> Follow | None:
        """End the follower's own running follow of that target; None when there is none
        (unknown id, someone else's, already ended: one statement for all)."""
        ...

    async def end_for_owner(
        self, follow_id: str, *, owner_person_id: str, reason: str, now: datetime
    ) -> Follow | None:
        """End a running follow of a vehicle the person owns (R-FOL-7); None otherwise."""
        ...

    async def end_lapsed(self, follow_id: str, *, now: datetime) -> Follow | None:
        """End a running follow past its expiry with reason ``expired`` (R-FOL-5); None
        when it is not (any more) running and past its expiry."""
        ...

    async def follows_of(self, follower_key: str, *, now: datetime) -> list[FollowRow]:
        """The follower's active follows, vehicle and licence, oldest first."""
        ...

    async def followers_of(self, owner_person_id: str, *, now: datetime) -> list[FollowerRow]:
        """Active follows of the person's vehicles, oldest first (R-X-3)."""
        ...

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Follow]:
        """Running follows past their expiry, in (expires_at, follow_id) order after the
        key ``after`` (keyset paging for the R-FOL-5 job)."""
        ...


class FollowRequestRepository(Protocol):
    """Follow requests inside one transaction. The database allows one waiting request per
    (requester, vehicle)."""

    async def add(self, request: FollowRequest) -> None: ...

    async def get_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        """The request if the user made it, else None: one query for "unknown" and "not
        yours" (None also for an id that is not a UUID)."""
        ...

    async def lock_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        """As ``get_for_requester``, its row locked."""
        ...

    async def lock_for_owner(self, request_id: str, owner_person_id: str) -> FollowRequest | None:
        """The request if it asks this person (the vehicle's owner), its row locked."""
        ...

    async def pending_of(self, requester_user_id: str, vehicle_id: str) -> FollowRequest | None:
        """The user's request for the vehicle still marked pending (maybe lapsed), locked."""
        ...

    async def save(self, request: FollowRequest) -> None:
        """Write state, decided_at, follow_id, the masked phone and the resend time."""
        ...

    async def row_of(self, request: FollowRequest) -> RequestRow:
        """The request with its vehicle's plate and the requester's name."""
        ...

    async def incoming(self, owner_person_id: str, *, now: datetime) -> list[RequestRow]:
        """Requests awaiting this owner's approval (unexpired), oldest first."""
        ...

    async def waiting_of(self, requester_user_id: str, *, now: datetime) -> list[RequestRow]:
        """The user's requests still waiting for an owner or a code (unexpired)."""
        ...

    async def expire(self, request_id: str, *, now: datetime) -> bool:
        """Mark a request still pending past its expiry ``expired``; False when it is not."""
        ...

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[FollowRequest]:
        """Pending requests past their expiry in (expires_at, request_id) order after
        ``after``."""
        ...


class UnitOfWork(Protocol):
    """One transaction: ``async with uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls everything back, events included (they
    reach the outbox only at commit). A constraint the database enforces becomes its
    stable error after the rollback.
    """

    @property
    def registry(self) -> RegistryReader: ...

    @property
    def follows(self) -> FollowRepository: ...

    @property
    def requests(self) -> FollowRequestRepository: ...

    def record(self, event: DomainEvent) -> None: ...

    def reading(self) -> UnitOfWork:
        """This unit of work for reads only: no transaction (no BEGIN/ROLLBACK round trips);
        ``record`` and ``commit`` refuse."""
        ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


#: A new unit of work per transaction: a use case that sends an SMS between two
#: transactions (never inside one) opens several.
UnitOfWorkFactory = Callable[[], UnitOfWork]


class RegistryCopy(Protocol):
    """The registry copy as the registry-event consumer writes it, inside its inbox
    transaction. Every write is an upsert by id: a redelivered event changes nothing."""

    async def upsert_person(
        self,
        *,
        person_id: str,
        name: str,
        phone: str | None,
        alipay_user_id: str | None,
        now: datetime,
    ) -> None: ...

    async def upsert_vehicle(
        self,
        *,
        vehicle_id: str,
        plate_type: str,
        plate_number: str,
        vin: str,
        owner_person_id: str,
        now: datetime,
    ) -> None: ...

    async def upsert_licence(
        self, *, licence_id: str, person_id: str, licence_no: str, file_no: str, now: datetime
    ) -> None: ...
