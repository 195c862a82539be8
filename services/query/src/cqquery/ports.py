"""The query use cases' ports: what ``service_layer`` needs from the outside world.

Adapters implement them with PostgreSQL, Redis and gRPC (``cqquery.adapters``), unit
tests with ``Fake*`` classes that do no I/O. Failures an adapter cannot hide cross the
port as :class:`PortUnavailableError`, never as a driver's own exception type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cqcommon.clock import Clock

from cqquery.domain.cursor import Position
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
from cqquery.domain.results import OnlineHandlingHint, PageItem, RenderedPage, ViolationShown

__all__ = [
    "Clock",
    "Eligibility",
    "LimitDecision",
    "ListRead",
    "LookupLimiter",
    "PageKey",
    "PageRenderer",
    "PortUnavailableError",
    "ReadCache",
    "ReadModel",
    "ReadModelReaders",
]


class PortUnavailableError(Exception):
    """A backing service (Redis, the database) cannot be reached right now."""


class ReadModel(Protocol):
    """Reads of the query read model (one connection's worth: see ReadModelReaders)."""

    async def person_for_user(self, alipay_user_id: str) -> str | None: ...

    async def access_facts(self, kind: Kind, subject_id: str) -> AccessFacts: ...

    async def violation_access(
        self, violation_id: str, *, user_id: str, now: datetime
    ) -> ViolationAccess:
        """The violation (or None) with its vehicle's and licence's owner and whether
        ``user_id`` follows each at ``now``: ONE statement, the same one whether or not
        the violation exists (placeholders for what is missing), so a foreign id and a
        missing one cost the same (R-Q-1)."""
        ...

    async def person(self, person_id: str) -> Person | None: ...

    async def vehicles_of(self, person_id: str) -> list[VehicleRow]: ...

    async def licences_of(self, person_id: str) -> list[LicenceRow]: ...

    async def followed_vehicles(self, user_id: str) -> list[VehicleRow]: ...

    async def followed_licences(self, user_id: str) -> list[LicenceRow]: ...

    async def vehicle_by_plate(self, plate_type: str, plate_number: str) -> VehicleRow | None: ...

    async def licence_by_no(self, licence_no: str) -> LicenceRow | None: ...

    async def violations(
        self,
        kind: Kind,
        subject_id: str,
        *,
        status: str | None,
        after: Position | None,
        limit: int,
    ) -> list[ViolationRow]: ...

    async def vehicles_access(
        self, vehicle_ids: Sequence[str], *, user_id: str, now: datetime
    ) -> list[SubjectAccess]:
        """The vehicles among ``vehicle_ids`` that exist, each with its owner and whether
        ``user_id`` follows it at ``now``: ONE statement (R-Q-1 for GetRelations)."""
        ...


class ReadModelReaders(Protocol):
    """Hands out a :class:`ReadModel` per use (one pooled connection, returned on exit)."""

    def reader(self) -> AbstractAsyncContextManager[ReadModel]: ...


@dataclass(frozen=True)
class PageKey:
    """Which page of a subject's list: pages are shared by every caller who may see the
    subject, so the key holds no caller, and the *verified* position, never the cursor
    string (which differs per caller)."""

    status: str | None
    limit: int
    today: str  # ISO date: amounts due change at midnight (Asia/Shanghai)
    after: Position | None


@dataclass(frozen=True)
class ListRead:
    """One round trip's answer for a list: the version (None = bypass the cache), and
    the cached facts and shared page when present. When asked for a caller's page: that
    caller's own version (None = none read: their page is not cached), and their page
    (the shared one with their hints, R-Q-3) when cached at both versions — then the
    shared page is not read at all."""

    version: str | None
    facts: AccessFacts | None
    page: RenderedPage | None
    asker_version: str | None = None
    own_page: RenderedPage | None = None


class ReadCache(Protocol):
    """The versioned read cache and proof grants (``adapters.cache`` says how).

    Reads never fail: an unreachable cache reads as a miss (version None). Only
    :meth:`grant_proof` raises :class:`PortUnavailableError`.
    """

    async def read_list(
        self, kind: Kind, subject_id: str, key: PageKey, *, for_caller: Caller | None = None
    ) -> ListRead:
        """Version, facts and the page in one round trip; with ``for_caller``, in the same
        round trip that caller's version and their own page, if cached."""
        ...

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
        """Cache one caller's page (the shared one with their hints) — short-lived: R-ADJ-6's
        guard and the scoring cycle change adjudication's answers with time alone."""
        ...

    async def put_facts(
        self, kind: Kind, subject_id: str, version: str, facts: AccessFacts
    ) -> None: ...

    async def put_page(
        self, kind: Kind, subject_id: str, version: str, key: PageKey, page: RenderedPage
    ) -> None: ...

    async def proofs(self, user_id: str, subjects: Sequence[tuple[Kind, str]]) -> list[bool]:
        """Whether ``user_id`` holds a proof grant for each subject: one round trip."""
        ...

    async def grant_proof(self, user_id: str, kind: Kind, subject_id: str, ttl_s: int) -> None:
        """Remember a successful proof (R-Q-1); PortUnavailableError if it cannot."""
        ...


class PageRenderer(Protocol):
    """Turns a page's violations into the form cached and sent, and sets a caller's
    hints on a rendered page (opaque to use cases)."""

    def render(self, violations: Sequence[ViolationShown]) -> bytes: ...

    def items(self, body: bytes) -> list[PageItem]:
        """Each violation of a rendered page, in order, with its vehicle and status."""
        ...

    def with_hints(self, body: bytes, hints: Mapping[str, OnlineHandlingHint]) -> bytes:
        """The rendered page with each violation's hint set (by violation id)."""
        ...


class Eligibility(Protocol):
    """Adjudication's online-handling answer per violation id (R-Q-3); never raises:
    an unanswered question is an ``unknown`` hint with a reason code.
    The caller's ``vehicle_relations`` travel with the question."""

    async def online_handling(
        self, caller: Caller, violation_ids: list[str]
    ) -> dict[str, OnlineHandlingHint]: ...


@dataclass(frozen=True)
class LimitDecision:
    allowed: bool
    retry_after_s: float


class LookupLimiter(Protocol):
    """Counts proof attempts per caller (R-Q-1); PortUnavailableError when it cannot count."""

    limit: int
    window_s: int

    async def attempt(self, key: str, *, now_s: float) -> LimitDecision: ...
