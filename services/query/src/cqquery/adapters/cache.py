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

Pages are shared by every caller who may see the subject (they hold no personal data):
a page is keyed by the status filter, the size, the day and the *verified* position it
starts after (never by the cursor string, which is signed per caller), and holds the
rendered violations and the unsigned position of its last row; each response signs
that for its own caller (``cqquery.domain.cursor``).

Online-handling hints (R-Q-3) are per caller, so they never go into the shared page: a
user's own copy of a page, with their hints set on its violations, lives beside it under
``q:own:<kind>:<id>:<caller>:<version>:<caller's version><page tail>`` and is read in
the same round trip instead of the shared page (so a hit parses one page and merges
nothing). ``<caller>`` is a digest of the caller's user and person id (a copy never
serves another caller); ``<caller's version>`` joins two more counters,
``q:ver:user:<alipay user id>`` (the caller's follows and proof grants: their relation to
vehicles of a licence's list) and ``q:ver:person:<person id>`` (the caller's own licence
and vehicles: points, R-X-2 usage, ownership), bumped by the same brackets. The subject's
version covers the violations themselves (handled, disputed, paid) and, for a vehicle,
its owner and followers. Adjudication's answer also changes with time alone (R-ADJ-6's
24 h guard, a new scoring cycle) and with state no event here reports at once, so a
caller's copy lives ``HINT_TTL_S`` at most; one holding any ``unknown`` is not kept.

Also here: proof grants (R-Q-1) — a user who proved a vehicle or licence may read it
for ``proof_grant_ttl_s`` — which are short-lived Redis keys by nature; a grant bumps
the user's version (their hints on a licence's list may change with it).

This is the adapter behind ``ports.ReadCache``: Redis errors stop here (a read becomes
a miss; a grant that cannot be written is ``PortUnavailableError``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis
from cqcommon.inbox import TransientError
from redis.exceptions import RedisError

from cqquery.domain.cursor import Position
from cqquery.domain.model import AccessFacts, Caller, Kind
from cqquery.domain.results import RenderedPage
from cqquery.ports import ListRead, PageKey, PortUnavailableError

log = logging.getLogger(__name__)

# ("vehicle" | "licence" | "violation", id), or a caller's ("user", alipay user id) and
# ("person", person id): the versions a caller's hints are keyed by
Subject = tuple[str, str]
VERSION_TTL_S = 7 * 24 * 3600
DIRTY_TTL_S = 60
#: the longest a caller's own page is reused (R-ADJ-6: time alone changes an answer)
HINT_TTL_S = 60

# One round trip for the hot read: KEYS = version, changing-counter, and the caller's
# user and person versions; ARGV = the facts and page key prefixes, the page key's tail
# and the caller's own-page key prefix ("" = a read for no caller, e.g. staff). The value
# keys embed the versions read here, so they are built inside the script (fine on one
# Redis; not cluster-slot safe). Returns {} while a change is in flight, else {version,
# facts or false, shared page or false[, caller's version, own page]} — the shared page
# only when there is no own page to answer with.
_READ_SCRIPT = """
local dirty = redis.call('GET', KEYS[2])
if dirty and tonumber(dirty) > 0 then return {} end
local version = redis.call('GET', KEYS[1]) or '0'
local facts = redis.call('GET', ARGV[1] .. version)
if ARGV[4] == '' then
  return {version, facts, redis.call('GET', ARGV[2] .. version .. ARGV[3])}
end
local asker = (redis.call('GET', KEYS[3]) or '0') .. '.' .. (redis.call('GET', KEYS[4]) or '0')
local own = redis.call('GET', ARGV[4] .. version .. ':' .. asker .. ARGV[3])
if own then return {version, facts, false, asker, own} end
return {version, facts, redis.call('GET', ARGV[2] .. version .. ARGV[3]), asker}
"""


# A batch's invalidation bracket in one call (atomic, as MULTI/EXEC was, and one command
# to build and parse instead of four per subject: at a few hundred events a second the
# pipeline's client-side work was as much as the projection's SQL). KEYS = each subject's
# version and changing counter, in pairs; ARGV[1], ARGV[2] = their TTLs; ARGV[2 + i] = how
# far subject i's counter moves. Returns how many subjects it moved.
_BRACKET_SCRIPT = """
for i = 1, #KEYS / 2 do
  local version, changing = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('INCR', version)
  redis.call('EXPIRE', version, ARGV[1])
  redis.call('INCRBY', changing, ARGV[2 + i])
  redis.call('EXPIRE', changing, ARGV[2])
end
return #KEYS / 2
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def caller_digest(caller: Caller) -> str:
    """Whose page: the user and the person together, unambiguously (a user whose token
    has no person id yet and the same user with one are different askers)."""
    raw = json.dumps([caller.user_id, caller.person_id]).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def facts_to_json(facts: AccessFacts) -> str:
    return json.dumps([facts.exists, facts.owner_person_id, facts.followers])


def facts_from_json(raw: bytes | str) -> AccessFacts:
    exists, owner, followers = json.loads(raw)
    return AccessFacts(bool(exists), owner, tuple((u, e) for u, e in followers))


def page_to_bytes(page: RenderedPage) -> bytes:
    """``<position token or nothing>\n<rendered body>`` (a token is one line of JSON)."""
    head = page.next_position.token().encode() if page.next_position else b""
    return head + b"\n" + page.body


def page_from_bytes(raw: bytes) -> RenderedPage:
    head, _, body = raw.partition(b"\n")
    return RenderedPage(body, Position.from_token(head) if head else None)


class ReadModelCache:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int, prefix: str = "q") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._read_script = redis.register_script(_READ_SCRIPT)
        self._bracket_script = redis.register_script(_BRACKET_SCRIPT)
        # brackets asked for in the same turn of the event loop (a consumer batch's events,
        # whose begins run side by side before its commit and ends after it) share one
        # script call per direction: one round trip for the batch instead of one per event
        self._pending: dict[int, Counter[tuple[str, str]]] = {+1: Counter(), -1: Counter()}
        self._flushing: dict[int, asyncio.Future[None] | None] = {+1: None, -1: None}
        self._flush_tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs

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
        pairs = {(kind, sid) for kind, sid in subjects if sid}
        if not pairs:
            return
        # each call counts once per subject, however calls are grouped: a subject in two
        # events of one batch is raised by 2 at its begin and lowered by 2 at its end
        self._pending[step].update(pairs)
        flushing = self._flushing[step]
        if flushing is None:
            flushing = asyncio.get_running_loop().create_future()
            self._flushing[step] = flushing
            task = asyncio.get_running_loop().create_task(self._flush(step, flushing))
            self._flush_tasks.add(task)
            task.add_done_callback(self._flush_tasks.discard)
        await asyncio.shield(flushing)

    async def _flush(self, step: int, done: asyncio.Future[None]) -> None:
        await asyncio.sleep(0)  # let the brackets asked for in this turn join
        counts, self._pending[step] = self._pending[step], Counter()
        self._flushing[step] = None
        subjects = sorted(counts.items())
        keys = [
            k for (kind, sid), _ in subjects for k in (self._ver(kind, sid), self._dirty(kind, sid))
        ]
        moves = [step * count for _, count in subjects]
        try:
            await self._bracket_script(keys=keys, args=[VERSION_TTL_S, DIRTY_TTL_S, *moves])
        except BaseException as exc:  # Redis, or cancelled: every waiter must hear it
            done.set_exception(TransientError(f"cache invalidation failed: {exc!r}"))
            if not isinstance(exc, RedisError):
                raise
        else:
            done.set_result(None)

    # -- reads ----------------------------------------------------------------------------
    async def read_list(
        self, kind: Kind, subject_id: str, key: PageKey, *, for_caller: Caller | None = None
    ) -> ListRead:
        """(version, cached facts, cached shared page[, caller's version, their own page])
        in one round trip; version None = bypass."""
        if not self.enabled:
            return ListRead(None, None, None)
        user_id = for_caller.user_id if for_caller else ""
        person_id = for_caller.person_id if for_caller else ""
        try:
            result = await self._read_script(
                keys=[
                    self._ver(kind, subject_id),
                    self._dirty(kind, subject_id),
                    self._ver("user", user_id),
                    self._ver("person", person_id),
                ],
                args=[
                    self.facts_key(kind, subject_id, ""),
                    self.page_key(kind, subject_id, ""),
                    self._page_tail(key),
                    self.own_page_key(kind, subject_id, for_caller) if for_caller else "",
                ],
            )
        except RedisError:
            log.warning("query cache unreachable; reading uncached", exc_info=True)
            return ListRead(None, None, None)
        if not result:
            return ListRead(None, None, None)
        version, facts, page = result[:3]
        asker = result[3] if len(result) > 3 else None
        own = result[4] if len(result) > 4 else None
        return ListRead(
            _text(version),
            facts_from_json(facts) if isinstance(facts, bytes) else None,
            page_from_bytes(page) if isinstance(page, bytes) else None,
            _text(asker) if asker is not None else None,
            page_from_bytes(own) if isinstance(own, bytes) else None,
        )

    def own_page_key(self, kind: str, subject_id: str, caller: Caller) -> str:
        """The prefix of a caller's own page keys for a subject (versions, tail follow)."""
        return f"{self.prefix}:own:{kind}:{subject_id}:{caller_digest(caller)}:"

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
        full_key = (
            f"{self.own_page_key(kind, subject_id, caller)}{version}:{asker_version}"
            + self._page_tail(key)
        )
        try:
            await self.redis.set(full_key, page_to_bytes(page), ex=min(self.ttl_s, HINT_TTL_S))
        except RedisError:
            log.warning("query cache unreachable; not caching a caller's page", exc_info=True)

    def facts_key(self, kind: str, subject_id: str, version: str) -> str:
        return f"{self.prefix}:facts:{kind}:{subject_id}:{version}"

    def page_key(self, kind: str, subject_id: str, version: str) -> str:
        """The prefix of every page key of a subject at a version (the tail follows)."""
        return f"{self.prefix}:page:{kind}:{subject_id}:{version}"

    @staticmethod
    def _page_tail(key: PageKey) -> str:
        # the verified position, never the cursor: one page serves every caller
        after = key.after.token() if key.after else ""
        return f":{key.status or '*'}:{key.limit}:{key.today}:{after}"

    async def put_facts(
        self, kind: Kind, subject_id: str, version: str, facts: AccessFacts
    ) -> None:
        await self._put(self.facts_key(kind, subject_id, version), facts_to_json(facts))

    async def put_page(
        self, kind: Kind, subject_id: str, version: str, key: PageKey, page: RenderedPage
    ) -> None:
        full_key = self.page_key(kind, subject_id, version) + self._page_tail(key)
        await self._put(full_key, page_to_bytes(page))

    async def _put(self, key: str, value: bytes | str) -> None:
        try:
            await self.redis.set(key, value, ex=self.ttl_s)
        except RedisError:
            log.warning("query cache unreachable; not caching", exc_info=True)

    # -- proof grants (R-Q-1) -----------------------------------------------------------
    def _proof(self, user_id: str, kind: str, subject_id: str) -> str:
        return f"{self.prefix}:proof:{user_id}:{kind}:{subject_id}"

    async def grant_proof(self, user_id: str, kind: Kind, subject_id: str, ttl_s: int) -> None:
        """Remember a successful proof; failing to is an error (the user would lose access).
        The user's version moves on with it: hints that saw them unrelated are stale."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._proof(user_id, kind, subject_id), b"1", ex=ttl_s)
                pipe.incr(self._ver("user", user_id))
                pipe.expire(self._ver("user", user_id), VERSION_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise PortUnavailableError(f"proof grants unreachable: {exc!r}") from exc

    async def proofs(self, user_id: str, subjects: Sequence[tuple[Kind, str]]) -> list[bool]:
        """Whether ``user_id`` proved each subject, in one round trip (MGET), asked the same
        way whatever the subjects are (a placeholder id simply has no grant)."""
        keys = [self._proof(user_id, kind, sid) for kind, sid in subjects]
        try:
            values = await self.redis.mget(keys)
        except RedisError:
            log.warning("proof grants unreachable; treating as not proven", exc_info=True)
            return [False] * len(keys)
        # a grant needs a user: one with an empty user id was never written
        return [bool(user_id) and v is not None for v in values]
