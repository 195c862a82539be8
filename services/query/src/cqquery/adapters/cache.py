"""Redis cache of hot reads, invalidated by the events that change them.

Every subject (a vehicle, a licence, a violation) has a version counter
``q:ver:<kind>:<id>``; cached values live under keys that embed the version they were
read at, so invalidating is one ``INCR``. An event that changes a subject brackets its
transaction (``begin`` / ``end``):

- ``begin``, inside the transaction: bump the version and raise the subject's "changing"
  counter ``q:dirty:<kind>:<id>``; if Redis is down the event fails and is retried, so
  no event is ever applied without invalidating;
- while the counter is above zero, readers neither read nor fill the cache: they read
  PostgreSQL, which shows the old rows before the commit and the new ones after;
- ``end``, after the commit: bump the version again and lower the counter.

So a reader can only cache rows it read while no change was in flight, under the
version current then, and every change moves the version on: a read that starts after
an event was applied never sees what the event changed (test: apply ``FinePaid``, the
next read shows ``paid``). If ``end`` never runs (a crash, a retried transaction), the
counter expires after ``DIRTY_TTL_S`` and caching of that subject resumes, with rows
that are committed by then. Versions outlive cached values (``VERSION_TTL_S`` ≫ the
value TTL), so a version key that expires cannot bring back an old value. Redis being
down makes reads uncached, never failed.

Also here: proof grants (R-Q-1) — a user who proved a vehicle or licence may read it
for ``proof_grant_ttl_s`` — which are short-lived Redis keys by nature.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis
from cqcommon.inbox import TransientError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Subject = tuple[str, str]  # ("vehicle" | "licence" | "violation", id)
VERSION_TTL_S = 7 * 24 * 3600
DIRTY_TTL_S = 60

# One round trip for the hot read: KEYS = version, changing-counter; ARGV = the facts and
# page key prefixes and the page key's tail. The value keys embed the version read here,
# so they are built inside the script (fine on one Redis; not cluster-slot safe).
# Returns {} while a change is in flight, else {version, facts or false, page or false}.
_READ_SCRIPT = """
local dirty = redis.call('GET', KEYS[2])
if dirty and tonumber(dirty) > 0 then return {} end
local version = redis.call('GET', KEYS[1]) or '0'
local facts = redis.call('GET', ARGV[1] .. version)
local page = redis.call('GET', ARGV[2] .. version .. ARGV[3])
return {version, facts, page}
"""


@dataclass(frozen=True)
class CachedFacts:
    """Who may see a subject, as cached: its owner and its active followers."""

    exists: bool
    owner_person_id: str | None
    followers: tuple[tuple[str, float | None], ...]  # (user_id, expires_at epoch or None)

    def to_json(self) -> str:
        return json.dumps([self.exists, self.owner_person_id, self.followers])

    @classmethod
    def from_json(cls, raw: bytes | str) -> CachedFacts:
        exists, owner, followers = json.loads(raw)
        return cls(bool(exists), owner, tuple((u, e) for u, e in followers))


class ReadModelCache:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int, prefix: str = "q") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._read_script = redis.register_script(_READ_SCRIPT)

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def _ver(self, kind: str, subject_id: str) -> str:
        return f"{self.prefix}:ver:{kind}:{subject_id}"

    def _dirty(self, kind: str, subject_id: str) -> str:
        return f"{self.prefix}:dirty:{kind}:{subject_id}"

    # -- invalidation (read-model consumer) ---------------------------------------------
    async def begin_change(self, subjects: Iterable[Subject]) -> None:
        """Inside the event's transaction; Redis errors are transient (the event retries)."""
        await self._bracket(subjects, +1)

    async def end_change(self, subjects: Iterable[Subject]) -> None:
        """After the commit."""
        await self._bracket(subjects, -1)

    async def _bracket(self, subjects: Iterable[Subject], step: int) -> None:
        pairs = sorted({(kind, sid) for kind, sid in subjects if sid})
        if not pairs:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for kind, sid in pairs:
                    pipe.incr(self._ver(kind, sid))
                    pipe.expire(self._ver(kind, sid), VERSION_TTL_S)
                    pipe.incrby(self._dirty(kind, sid), step)
                    pipe.expire(self._dirty(kind, sid), DIRTY_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise TransientError(f"cache invalidation failed: {exc!r}") from exc

    # -- reads ----------------------------------------------------------------------------
    async def version(self, kind: str, subject_id: str) -> str | None:
        """The subject's current version, or None when reads must bypass the cache (cache
        off or unreachable, or a change to the subject in flight)."""
        if not self.enabled:
            return None
        try:
            version, dirty = await self.redis.mget(
                [self._ver(kind, subject_id), self._dirty(kind, subject_id)]
            )
        except RedisError:
            log.warning("query cache unreachable; reading uncached", exc_info=True)
            return None
        if dirty is not None and int(dirty) > 0:
            return None
        return version.decode() if isinstance(version, bytes) else "0"

    async def read_facts_and_page(
        self, kind: str, subject_id: str, *page_parts: object
    ) -> tuple[str | None, bytes | None, bytes | None]:
        """(version, cached facts, cached page) in one round trip; version None = bypass."""
        if not self.enabled:
            return None, None, None
        try:
            result = await self._read_script(
                keys=[self._ver(kind, subject_id), self._dirty(kind, subject_id)],
                args=[
                    self.facts_key(kind, subject_id, ""),
                    self.page_key(kind, subject_id, ""),
                    self._page_tail(page_parts),
                ],
            )
        except RedisError:
            log.warning("query cache unreachable; reading uncached", exc_info=True)
            return None, None, None
        if not result:
            return None, None, None
        version, facts, page = result
        return (
            version.decode() if isinstance(version, bytes) else str(version),
            facts if isinstance(facts, bytes) else None,
            page if isinstance(page, bytes) else None,
        )

    def facts_key(self, kind: str, subject_id: str, version: str) -> str:
        return f"{self.prefix}:facts:{kind}:{subject_id}:{version}"

    def page_key(self, kind: str, subject_id: str, version: str, *parts: object) -> str:
        base = f"{self.prefix}:page:{kind}:{subject_id}:{version}"
        return base + self._page_tail(parts) if parts else base

    @staticmethod
    def _page_tail(parts: tuple[object, ...]) -> str:
        return ":" + ":".join(str(p) for p in parts)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        try:
            values = await self.redis.mget(keys)
        except RedisError:
            log.warning("query cache unreachable; reading uncached", exc_info=True)
            return [None] * len(keys)
        return [v if isinstance(v, bytes) else None for v in values]

    async def put(self, key: str, value: bytes | str) -> None:
        try:
            await self.redis.set(key, value, ex=self.ttl_s)
        except RedisError:
            log.warning("query cache unreachable; not caching", exc_info=True)

    # -- proof grants (R-Q-1) -----------------------------------------------------------
    def _proof(self, user_id: str, kind: str, subject_id: str) -> str:
        return f"{self.prefix}:proof:{user_id}:{kind}:{subject_id}"

    async def grant_proof(self, user_id: str, kind: str, subject_id: str, ttl_s: int) -> None:
        """Remember a successful proof; failing to is an error (the user would lose access)."""
        await self.redis.set(self._proof(user_id, kind, subject_id), b"1", ex=ttl_s)

    async def has_proof(self, user_id: str, kind: str, subject_id: str) -> bool:
        if not user_id:
            return False
        try:
            return bool(await self.redis.exists(self._proof(user_id, kind, subject_id)))
        except RedisError:
            log.warning("proof grants unreachable; treating as not proven", exc_info=True)
            return False
