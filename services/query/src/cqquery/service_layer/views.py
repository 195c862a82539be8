"""The query use cases: who may see what (R-Q-1), read through the cache, mask (R-Q-4).

Each use case takes the caller (``domain.model.Caller``) and answers a value of
``domain.results``; it talks to the world only through ``cqquery.ports``. Anything the
caller may not see answers exactly as a record that does not exist (``NOT_FOUND``),
including a wrong VIN or file number in a proof lookup — and a violation's detail
takes the same path, the same statements and round trips, for a foreign id as for a
missing one, so not even the time it takes tells them apart.

Every violation a user sees carries adjudication's online-handling hint (R-Q-3): the
detail asks for its one violation; a list page asks ONE question for all of its
violations and keeps the caller's copy of the page with their answers beside the shared
page (``adapters.cache``), read in the same round trip instead of it. The caller's relations to the vehicles go with
the question, so adjudication does not ask back. Staff get no hints (they handle at the
counter, not online).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from cqcommon import identifiers as ids
from cqcommon.clock import today_in_shanghai
from cqcommon.errors import (
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    VALIDATION_FAILED,
    DomainError,
)

from cqquery.domain.access import (
    Relation,
    handling_relation,
    relation_to,
    require_visible,
    subject_relation,
    violation_relation,
)
from cqquery.domain.cursor import CursorScope, CursorSigner, Position, Purpose, page_size
from cqquery.domain.model import AccessFacts, Caller, Kind, VehicleRelation, ViolationRow
from cqquery.domain.results import (
    ListPage,
    Lookup,
    Me,
    OnlineHandlingHint,
    RenderedPage,
    ViolationDetail,
    licence_shown,
    vehicle_shown,
    violation_shown,
)
from cqquery.ports import (
    Clock,
    Eligibility,
    ListRead,
    LookupLimiter,
    PageKey,
    PageRenderer,
    PortUnavailableError,
    ReadCache,
    ReadModel,
    ReadModelReaders,
)

log = logging.getLogger(__name__)

LOOKUP_PAGE_SIZE = 20
#: GetRelations answers for one page of vehicles at most (adjudication asks per question)
MAX_RELATION_IDS = 100


@dataclass
class QueryViews:
    readers: ReadModelReaders
    cache: ReadCache
    renderer: PageRenderer
    eligibility: Eligibility
    lookup_limiter: LookupLimiter
    clock: Clock
    cursors: CursorSigner
    points_limit: int
    proof_grant_ttl_s: int

    # -- who is asking ------------------------------------------------------------------
    async def resolve_user(self, alipay_user_id: str) -> str | None:
        """The registry person linked to an Alipay user (R-USR-1), if any."""
        async with self.readers.reader() as model:
            return await model.person_for_user(alipay_user_id)

    async def with_person(self, caller: Caller) -> Caller:
        """The caller with their person id, when the token was issued before the registry
        record reached the read model (R-USR-1: the token then carries none)."""
        if caller.person_id or not caller.user_id or caller.is_staff:
            return caller
        person_id = await self.resolve_user(caller.user_id)
        return replace(caller, person_id=person_id) if person_id else caller

    # -- access -------------------------------------------------------------------------
    async def _relation(
        self, caller: Caller, kind: Kind, sid: str, facts: AccessFacts
    ) -> Relation | None:
        now_s = self.clock.now().timestamp()
        relation = relation_to(facts, caller, now_s=now_s)
        # proof grants are asked for last: one more round trip, for the few who proved
        # (asked for a missing subject too, so a foreign one and a missing one cost alike)
        if relation is None and caller.user_id:
            (proven,) = await self.cache.proofs(caller.user_id, [(kind, sid)])
            relation = relation_to(facts, caller, now_s=now_s, proven=proven)
        return relation

    # -- R-Q-1 lists ----------------------------------------------------------------------
    async def list_violations(
        self,
        caller: Caller,
        kind: Kind,
        sid: str,
        *,
        status: str | None,
        page_size_requested: int = 0,
        cursor: str = "",
        purpose: Purpose = "user_list",
    ) -> ListPage:
        """One page of a subject's violations for a caller who may see it (R-Q-1)."""
        limit = page_size(page_size_requested)
        scope = CursorScope.of(purpose, kind, sid, status, caller)
        after = self.cursors.verify(scope, cursor) if cursor else None
        today = today_in_shanghai(self.clock)
        key = PageKey(status, limit, today.isoformat(), after)
        # the hot path: version, access facts and the page — a user's own copy with their
        # hints, else the shared one — in one Redis round trip
        cached = await self.cache.read_list(kind, sid, key, for_caller=_asker(caller))
        shared = cached.own_page or cached.page
        if cached.facts is not None and shared is not None:
            relation = require_visible(await self._relation(caller, kind, sid, cached.facts))
            page = shared
        else:
            relation, page = await self._list_miss(caller, kind, sid, key, cached, today)
        page = await self._own_page(caller, kind, sid, relation, key, page, cached)
        return self._signed(scope, page)

    async def _list_miss(
        self, caller: Caller, kind: Kind, sid: str, key: PageKey, cached: ListRead, today: date
    ) -> tuple[Relation, RenderedPage]:
        """A miss: what was not cached, from one pooled connection (the relation first,
        so a caller who may not see the subject reads no page)."""
        async with self.readers.reader() as model:
            facts = cached.facts
            if facts is None:
                facts = await model.access_facts(kind, sid)
                if cached.version is not None:
                    await self.cache.put_facts(kind, sid, cached.version, facts)
            relation = require_visible(await self._relation(caller, kind, sid, facts))
            shared = cached.own_page or cached.page
            if shared is not None:
                return relation, shared
            page = await self._load_page(model, kind, sid, key.status, key.after, key.limit, today)
        if cached.version is not None:
            await self.cache.put_page(kind, sid, cached.version, key, page)
        return relation, page

    async def _first_page(
        self, caller: Caller, kind: Kind, sid: str, relation: Relation
    ) -> ListPage:
        """The newest violations of a subject whose access is already established; its
        cursor continues the caller's user list of that subject."""
        scope = CursorScope.of("user_list", kind, sid, None, caller)
        today = today_in_shanghai(self.clock)
        key = PageKey(None, LOOKUP_PAGE_SIZE, today.isoformat(), None)
        cached = await self.cache.read_list(kind, sid, key, for_caller=_asker(caller))
        page = cached.own_page or cached.page
        if page is None:
            async with self.readers.reader() as model:
                page = await self._load_page(model, kind, sid, None, None, LOOKUP_PAGE_SIZE, today)
            if cached.version is not None:
                await self.cache.put_page(kind, sid, cached.version, key, page)
        page = await self._own_page(caller, kind, sid, relation, key, page, cached)
        return self._signed(scope, page)

    async def _own_page(
        self,
        caller: Caller,
        kind: Kind,
        sid: str,
        relation: Relation,
        key: PageKey,
        page: RenderedPage,
        cached: ListRead,
    ) -> RenderedPage:
        """The caller's copy of a page, each violation with their hint (R-Q-3): the cached
        copy as it is, else a decided violation's hint from its record (the same for every
        caller, as on the detail) and ONE question to adjudication for all of the page's
        open violations (none when there are none); the copy kept when every answer is
        definite (an ``unknown`` is asked again next time). Staff get the shared page (no
        online handling)."""
        if caller.is_staff:
            return page
        if cached.own_page is not None:
            return cached.own_page
        items = self.renderer.items(page.body)
        if not items:
            return page
        answers: dict[str, OnlineHandlingHint] = {}
        open_items = []
        for item in items:
            decided = OnlineHandlingHint.decided(item.status, disputed=item.disputed)
            if decided is None:
                open_items.append(item)
            else:
                answers[item.violation_id] = decided
        if open_items:
            if kind == "vehicle":
                # every violation of the page is on the listed vehicle, whose relation we have
                subject = handling_relation(relation)
                relations = {sid: subject} if subject else {}
            else:
                vehicles = sorted({item.vehicle_id for item in open_items})
                relations = await self.vehicle_relations(caller, vehicles)
            answers |= await self.eligibility.online_handling(
                caller.asking_about(relations), [item.violation_id for item in open_items]
            )
        own = RenderedPage(self.renderer.with_hints(page.body, answers), page.next_position)
        if (
            cached.version is not None
            and cached.asker_version is not None
            and all(answer.definite for answer in answers.values())
        ):
            await self.cache.put_own_page(
                kind, sid, cached.version, key, caller, cached.asker_version, own
            )
        return own

    async def _load_page(
        self,
        model: ReadModel,
        kind: Kind,
        sid: str,
        status: str | None,
        after: Position | None,
        limit: int,
        today: date,
    ) -> RenderedPage:
        rows = await model.violations(kind, sid, status=status, after=after, limit=limit + 1)
        return self._render(rows, limit, today)

    def _render(self, rows: list[ViolationRow], limit: int, today: date) -> RenderedPage:
        position = None
        if len(rows) > limit:
            rows = rows[:limit]
            position = Position(rows[-1].occurred_at, rows[-1].violation_id)
        body = self.renderer.render([violation_shown(r, today=today) for r in rows])
        return RenderedPage(body, position)

    def _signed(self, scope: CursorScope, page: RenderedPage) -> ListPage:
        """The page with a cursor signed for this caller and this list."""
        position = page.next_position
        return ListPage(page.body, self.cursors.sign(scope, position) if position else "")

    # -- R-Q-1 for adjudication (R-ADJ-3/4) -------------------------------------------------
    async def vehicle_relations(
        self, caller: Caller, vehicle_ids: Sequence[str]
    ) -> dict[str, VehicleRelation]:
        """How the caller relates to each vehicle: "own", "followed" or "proven"; a vehicle
        they do not relate to (or that does not exist) is absent. One statement, and one
        Redis round trip for proof grants when some vehicle is neither owned nor followed.
        Staff relate to none (they do not handle online)."""
        wanted = list(dict.fromkeys(v for v in vehicle_ids if v))
        if len(wanted) > MAX_RELATION_IDS:
            raise DomainError(
                VALIDATION_FAILED, details={"field": "vehicle_ids", "max": MAX_RELATION_IDS}
            )
        if caller.is_staff or not wanted:
            return {}
        async with self.readers.reader() as model:
            found = await model.vehicles_access(
                wanted, user_id=caller.user_id, now=self.clock.now()
            )
        relations: dict[str, VehicleRelation] = {}
        unrelated = []
        for subject in found:
            relation = handling_relation(subject_relation(subject, proven=False, caller=caller))
            if relation is None:
                unrelated.append(subject)
            else:
                relations[subject.subject_id] = relation
        if unrelated and caller.user_id:
            proven = await self.cache.proofs(
                caller.user_id, [("vehicle", s.subject_id) for s in unrelated]
            )
            for subject, granted in zip(unrelated, proven, strict=True):
                if granted:
                    relations[subject.subject_id] = "proven"
        return relations

    # -- R-Q-3 detail ---------------------------------------------------------------------
    async def get_violation(self, caller: Caller, violation_id: str) -> ViolationDetail:
        """One violation through its vehicle or its licence (R-Q-1, R-Q-3).

        Always one statement (the violation with both subjects' owners and the caller's
        follows) and one Redis round trip (proof grants of both subjects, placeholders
        when there is no violation), whatever exists; only a visible violation goes on
        to ask adjudication, so both 404s skip that alike.
        """
        async with self.readers.reader() as model:
            found = await model.violation_access(
                violation_id, user_id=caller.user_id, now=self.clock.now()
            )
        subjects = (found.vehicle, found.licence)
        proven = await self.cache.proofs(caller.user_id, [(s.kind, s.subject_id) for s in subjects])
        relation = violation_relation(subjects, (proven[0], proven[1]), caller)
        if found.row is None or relation is None:
            raise DomainError(NOT_FOUND)
        row = found.row
        shown = violation_shown(row, today=today_in_shanghai(self.clock))
        if caller.is_staff:
            return ViolationDetail(shown, None)
        decided = OnlineHandlingHint.decided(row.status, disputed=row.disputed)
        if decided is not None:  # R-Q-3: its record's answer, the same adjudication gives
            return ViolationDetail(shown, decided)
        vehicle = handling_relation(
            subject_relation(found.vehicle, proven=proven[0], caller=caller)
        )
        asker = caller.asking_about({row.vehicle_id: vehicle} if vehicle else {})
        hints = await self.eligibility.online_handling(asker, [row.violation_id])
        return ViolationDetail(shown, hints[row.violation_id])

    # -- R-Q-1 / R-X-1 the caller's own page ------------------------------------------------
    async def get_me(self, caller: Caller) -> Me:
        today = today_in_shanghai(self.clock)
        me = caller.person_id
        async with self.readers.reader() as model:
            person = await model.person(me) if me else None
            vehicles = await model.vehicles_of(me) if person else []
            licences = await model.licences_of(me) if person else []
            followed_vehicles = await model.followed_vehicles(caller.user_id)
            followed_licences = await model.followed_licences(caller.user_id)
        return Me(
            person=person,  # their own: unmasked (R-Q-4)
            vehicles=[
                vehicle_shown(v, relation="own", caller_person_id=me, is_staff=False)
                for v in vehicles
            ],
            licence=(
                licence_shown(
                    licences[0],
                    relation="own",
                    caller_person_id=me,
                    is_staff=False,
                    today=today,
                    points_limit=self.points_limit,
                )
                if licences
                else None
            ),
            followed_vehicles=[
                vehicle_shown(v, relation="followed", caller_person_id=me, is_staff=False)
                for v in followed_vehicles
                if v.owner_person_id != me
            ],
            followed_licences=[
                licence_shown(
                    lic,
                    relation="followed",
                    caller_person_id=me,
                    is_staff=False,
                    today=today,
                    points_limit=self.points_limit,
                )
                for lic in followed_licences
                if lic.person_id != me
            ],
        )

    # -- R-Q-1 proof lookups --------------------------------------------------------------
    async def _count_lookup(self, caller: Caller) -> None:
        """Every proof attempt counts, right or wrong; a limiter that cannot count refuses
        (fail closed)."""
        key = caller.user_id or caller.person_id
        if not key:
            raise DomainError(NOT_FOUND)
        try:
            decision = await self.lookup_limiter.attempt(key, now_s=self.clock.now().timestamp())
        except PortUnavailableError as exc:
            log.warning("lookup limiter unreachable: %r", exc)
            raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "rate_limiter"}) from exc
        if not decision.allowed:
            raise DomainError(
                RATE_LIMITED,
                details={
                    "retry_after_s": decision.retry_after_s,
                    "limit": self.lookup_limiter.limit,
                    "window_s": self.lookup_limiter.window_s,
                },
            )

    async def lookup_vehicle(
        self, caller: Caller, *, plate_type: str, plate_number: str, vin: str
    ) -> Lookup:
        """R-Q-1: plate type + plate number + the VIN's last 6 prove a vehicle."""
        parsed_type, parsed_number = ids.parse_plate(plate_type, plate_number)
        ids.parse_vin_proof(vin)
        await self._count_lookup(caller)
        async with self.readers.reader() as model:
            row = await model.vehicle_by_plate(parsed_type.value, parsed_number)
        # compare even when there is no vehicle, so both answers take the same path
        matches = ids.vin_matches(row.vin if row else "0" * 17, vin)
        if row is None or not matches:
            raise DomainError(NOT_FOUND)
        facts = AccessFacts(True, row.owner_person_id, ())
        relation = relation_to(facts, caller, now_s=0.0) or "proven"
        await self._grant(caller, "vehicle", row.vehicle_id)
        page = await self._first_page(caller, "vehicle", row.vehicle_id, relation)
        shown = vehicle_shown(
            row, relation=relation, caller_person_id=caller.person_id, is_staff=False
        )
        return Lookup(vehicle=shown, licence=None, page=page)

    async def lookup_licence(
        self, caller: Caller, *, name: str, licence_no: str, file_no: str
    ) -> Lookup:
        """R-Q-1: name + licence number + file number prove a licence."""
        parsed_no = ids.parse_id_number(licence_no)
        parsed_file = ids.parse_file_no(file_no)
        name = name.strip()
        if not name or len(name) > 64:
            raise DomainError(NOT_FOUND)
        await self._count_lookup(caller)
        async with self.readers.reader() as model:
            row = await model.licence_by_no(parsed_no)
        holder_name = row.holder.name if row and row.holder else ""
        matches = _same(row.file_no if row else "", parsed_file) & _same(holder_name, name)
        if row is None or not matches:
            raise DomainError(NOT_FOUND)
        facts = AccessFacts(True, row.person_id, ())
        relation = relation_to(facts, caller, now_s=0.0) or "proven"
        await self._grant(caller, "licence", row.licence_id)
        page = await self._first_page(caller, "licence", row.licence_id, relation)
        shown = licence_shown(
            row,
            relation=relation,
            caller_person_id=caller.person_id,
            is_staff=False,
            today=today_in_shanghai(self.clock),
            points_limit=self.points_limit,
        )
        return Lookup(vehicle=None, licence=shown, page=page)

    async def _grant(self, caller: Caller, kind: Kind, sid: str) -> None:
        try:
            await self.cache.grant_proof(caller.user_id, kind, sid, self.proof_grant_ttl_s)
        except PortUnavailableError as exc:
            raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "proof_grants"}) from exc

    # -- R-USR-2 counter reads (unmasked; the gateway audits every call) ----------------------
    async def staff_get_vehicle(
        self,
        caller: Caller,
        *,
        plate_type: str,
        plate_number: str,
        page_size_requested: int = 0,
        cursor: str = "",
    ) -> Lookup:
        _require_staff(caller)
        parsed_type, parsed_number = ids.parse_plate(plate_type, plate_number)
        async with self.readers.reader() as model:
            row = await model.vehicle_by_plate(parsed_type.value, parsed_number)
        if row is None:
            raise DomainError(NOT_FOUND)
        page = await self.list_violations(
            caller,
            "vehicle",
            row.vehicle_id,
            status=None,
            page_size_requested=page_size_requested,
            cursor=cursor,
            purpose="staff_vehicle",
        )
        shown = vehicle_shown(row, relation="staff", caller_person_id="", is_staff=True)
        return Lookup(vehicle=shown, licence=None, page=page)

    async def staff_get_licence(
        self, caller: Caller, *, licence_no: str, page_size_requested: int = 0, cursor: str = ""
    ) -> Lookup:
        _require_staff(caller)
        parsed_no = ids.parse_id_number(licence_no)
        async with self.readers.reader() as model:
            row = await model.licence_by_no(parsed_no)
        if row is None:
            raise DomainError(NOT_FOUND)
        page = await self.list_violations(
            caller,
            "licence",
            row.licence_id,
            status=None,
            page_size_requested=page_size_requested,
            cursor=cursor,
            purpose="staff_licence",
        )
        shown = licence_shown(
            row,
            relation="staff",
            caller_person_id="",
            is_staff=True,
            today=today_in_shanghai(self.clock),
            points_limit=self.points_limit,
        )
        return Lookup(vehicle=None, licence=shown, page=page)


def _asker(caller: Caller) -> Caller | None:
    """Whose own page a list reads: a user's; staff get the shared page."""
    return None if caller.is_staff else caller


def _require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise DomainError(FORBIDDEN, details={"required": "staff"})


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
