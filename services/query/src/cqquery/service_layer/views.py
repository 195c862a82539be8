"""The query use cases: who may see what (R-Q-1), read through the cache, mask (R-Q-4).

Each method takes the gateway's ``Caller`` and answers a protobuf view. Anything the
caller may not see answers exactly as a record that does not exist (``NOT_FOUND``),
including a wrong VIN or file number in a proof lookup.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime

from cqcommon import identifiers as ids
from cqcommon.clock import Clock, today_in_shanghai
from cqcommon.db import Database
from cqcommon.errors import FORBIDDEN, NOT_FOUND, RATE_LIMITED, SERVICE_UNAVAILABLE, DomainError
from cqcommon.protomap import STATUS_NAMES, plate_type_from_proto
from cqcommon.ratelimit import SlidingWindowLimiter
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as pb
from redis.exceptions import RedisError

from cqquery.adapters.cache import CachedFacts, ReadModelCache
from cqquery.adapters.eligibility import AdjudicationEligibility
from cqquery.adapters.postgres_read_model import Kind, PostgresReadModel, ViolationRow
from cqquery.domain.access import Relation, SubjectFacts, relation_of, require_visible
from cqquery.domain.cursor import decode_cursor, encode_cursor, page_size
from cqquery.mappers import licence_to_proto, vehicle_to_proto, violation_to_proto

log = logging.getLogger(__name__)

LOOKUP_PAGE_SIZE = 20


@dataclass
class QueryViews:
    db: Database
    cache: ReadModelCache
    eligibility: AdjudicationEligibility
    lookup_limiter: SlidingWindowLimiter
    clock: Clock
    points_limit: int
    proof_grant_ttl_s: int

    # -- access -------------------------------------------------------------------------
    async def with_person(self, caller: common.Caller) -> common.Caller:
        """The caller with their person id, when the token was issued before the registry
        record reached the read model (R-USR-1: the token then carries none)."""
        if caller.person_id or not caller.user_id or caller.staff_id:
            return caller
        async with self.db.connection() as conn:
            person_id = await PostgresReadModel(conn).person_for_user(caller.user_id)
        if not person_id:
            return caller
        resolved = common.Caller()
        resolved.CopyFrom(caller)
        resolved.person_id = person_id
        return resolved

    async def _facts(self, kind: Kind, sid: str) -> CachedFacts:
        """Owner and followers of a subject, from the cache when it has them."""
        version = await self.cache.version(kind, sid)
        key = self.cache.facts_key(kind, sid, version) if version is not None else None
        if key is not None:
            (raw,) = await self.cache.get_many([key])
            if raw is not None:
                return CachedFacts.from_json(raw)
        return await self._load_facts(kind, sid, key)

    async def _load_facts(self, kind: Kind, sid: str, key: str | None) -> CachedFacts:
        async with self.db.connection() as conn:
            facts = await PostgresReadModel(conn).subject_facts(kind, sid)
        if key is not None:
            await self.cache.put(key, facts.to_json())
        return facts

    async def _relation(
        self, caller: common.Caller, kind: Kind, sid: str, facts: CachedFacts
    ) -> Relation | None:
        now = self.clock.now().timestamp()
        followed = any(
            user == caller.user_id and (expires is None or expires > now)
            for user, expires in facts.followers
        )
        subject = SubjectFacts(facts.exists, facts.owner_person_id, followed)
        is_staff = bool(caller.staff_id)
        relation = relation_of(subject, caller_person_id=caller.person_id, is_staff=is_staff)
        # proof grants are asked for last: one more round trip, for the few who proved
        if relation is None and facts.exists and caller.user_id:
            proven = await self.cache.has_proof(caller.user_id, kind, sid)
            subject = replace(subject, proven_by_caller=proven)
            relation = relation_of(subject, caller_person_id=caller.person_id, is_staff=is_staff)
        return relation

    # -- R-Q-1 lists ----------------------------------------------------------------------
    async def list_violations(
        self,
        caller: common.Caller,
        kind: Kind,
        sid: str,
        *,
        status: common.ViolationStatus.ValueType,
        page: common.PageRequest,
    ) -> pb.ListViolationsResponse:
        limit = page_size(page.page_size)
        after = decode_cursor(page.cursor) if page.cursor else None
        status_name = STATUS_NAMES.get(status) if status else None
        today = today_in_shanghai(self.clock)
        # the hot path: version, access facts and the page in one Redis round trip
        page_parts = _page_parts(status_name, limit, today, page.cursor)
        version, facts_raw, page_raw = await self.cache.read_facts_and_page(kind, sid, *page_parts)
        facts_key = page_key = None
        if version is not None:
            facts_key = self.cache.facts_key(kind, sid, version)
            page_key = self.cache.page_key(kind, sid, version, *page_parts)
        if facts_raw is not None and page_raw is not None:
            require_visible(
                await self._relation(caller, kind, sid, CachedFacts.from_json(facts_raw))
            )
            return pb.ListViolationsResponse.FromString(page_raw)
        # a miss: facts and page from one pooled connection
        async with self.db.connection() as conn:
            model = PostgresReadModel(conn)
            if facts_raw is not None:
                facts = CachedFacts.from_json(facts_raw)
            else:
                facts = await model.subject_facts(kind, sid)
                if facts_key is not None:
                    await self.cache.put(facts_key, facts.to_json())
            require_visible(await self._relation(caller, kind, sid, facts))
            if page_raw is not None:
                return pb.ListViolationsResponse.FromString(page_raw)
            rows = await model.violations(
                kind, sid, status=status_name, after=after, limit=limit + 1
            )
        response = _page_response(rows, limit, today=today)
        if page_key is not None:
            await self.cache.put(page_key, response.SerializeToString())
        return response

    async def _first_page(self, kind: Kind, sid: str) -> pb.ListViolationsResponse:
        """The newest violations of a subject whose access is already established."""
        today = today_in_shanghai(self.clock)
        version = await self.cache.version(kind, sid)
        key = None
        if version is not None:
            key = self.cache.page_key(
                kind, sid, version, *_page_parts(None, LOOKUP_PAGE_SIZE, today, "")
            )
            (raw,) = await self.cache.get_many([key])
            if raw is not None:
                return pb.ListViolationsResponse.FromString(raw)
        return await self._load_page(kind, sid, None, None, LOOKUP_PAGE_SIZE, today, key)

    async def _load_page(
        self,
        kind: Kind,
        sid: str,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
        today: date,
        key: str | None,
    ) -> pb.ListViolationsResponse:
        async with self.db.connection() as conn:
            rows = await PostgresReadModel(conn).violations(
                kind, sid, status=status, after=after, limit=limit + 1
            )
        response = _page_response(rows, limit, today=today)
        if key is not None:
            await self.cache.put(key, response.SerializeToString())
        return response

    # -- R-Q-3 detail ---------------------------------------------------------------------
    async def get_violation(self, caller: common.Caller, violation_id: str) -> pb.ViolationView:
        async with self.db.connection() as conn:
            row = await PostgresReadModel(conn).violation(violation_id)
        if row is None:
            raise DomainError(NOT_FOUND)
        require_visible(await self._violation_relation(caller, row))
        view = violation_to_proto(row, today=today_in_shanghai(self.clock))
        if not caller.staff_id:
            hints = await self.eligibility.online_handling(caller, [row.violation_id])
            view.online_handling.CopyFrom(hints[row.violation_id])
        return view

    async def _violation_relation(
        self, caller: common.Caller, row: ViolationRow
    ) -> Relation | None:
        """A violation is visible through its vehicle or through the licence it is on."""
        subjects: list[tuple[Kind, str]] = [("vehicle", row.vehicle_id)]
        if row.licence_id:
            subjects.append(("licence", row.licence_id))
        for kind, sid in subjects:
            relation = await self._relation(caller, kind, sid, await self._facts(kind, sid))
            if relation is not None:
                return relation
        return None

    # -- R-Q-1 / R-X-1 the caller's own page ------------------------------------------------
    async def get_me(self, caller: common.Caller) -> pb.GetMeResponse:
        today = today_in_shanghai(self.clock)
        me = caller.person_id
        response = pb.GetMeResponse()
        async with self.db.connection() as conn:
            model = PostgresReadModel(conn)
            person = await model.person(me) if me else None
            vehicles = await model.vehicles_of(me) if person else []
            licences = await model.licences_of(me) if person else []
            followed_vehicles = await model.followed_vehicles(caller.user_id)
            followed_licences = await model.followed_licences(caller.user_id)
        if person is not None:
            response.person.CopyFrom(
                pb.PersonView(
                    person_id=person.person_id,
                    name=person.name,
                    id_number=person.id_number,
                    phone=person.phone,
                )
            )
        response.vehicles.extend(
            vehicle_to_proto(v, relation="own", caller_person_id=me, is_staff=False)
            for v in vehicles
        )
        if licences:
            response.licence.CopyFrom(
                licence_to_proto(
                    licences[0],
                    relation="own",
                    caller_person_id=me,
                    is_staff=False,
                    today=today,
                    points_limit=self.points_limit,
                )
            )
        response.followed_vehicles.extend(
            vehicle_to_proto(v, relation="followed", caller_person_id=me, is_staff=False)
            for v in followed_vehicles
            if v.owner_person_id != me
        )
        response.followed_licences.extend(
            licence_to_proto(
                lic,
                relation="followed",
                caller_person_id=me,
                is_staff=False,
                today=today,
                points_limit=self.points_limit,
            )
            for lic in followed_licences
            if lic.person_id != me
        )
        return response

    # -- R-Q-1 proof lookups --------------------------------------------------------------
    async def _count_lookup(self, caller: common.Caller) -> None:
        """Every proof attempt counts, right or wrong; Redis down refuses (fail closed)."""
        key = caller.user_id or caller.person_id
        if not key:
            raise DomainError(NOT_FOUND)
        try:
            decision = await self.lookup_limiter.attempt(key, now_s=self.clock.now().timestamp())
        except RedisError as exc:
            log.warning("lookup limiter unreachable: %r", exc)
            raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "rate_limiter"}) from exc
        if not decision.allowed:
            raise DomainError(
                RATE_LIMITED,
                details={
                    "retry_after_s": decision.retry_after_s,
                    "limit": self.lookup_limiter.limit,
                    "window_s": self.lookup_limiter.window_ms // 1000,
                },
            )

    async def lookup_vehicle(self, request: pb.LookupVehicleRequest) -> pb.LookupResponse:
        caller = request.caller
        plate = plate_type_from_proto(request.plate_type)
        plate_type, plate_number = ids.parse_plate(
            plate.value if plate else "", request.plate_number
        )
        ids.parse_vin_proof(request.vin)
        await self._count_lookup(caller)
        async with self.db.connection() as conn:
            row = await PostgresReadModel(conn).vehicle_by_plate(plate_type.value, plate_number)
        # compare even when there is no vehicle, so both answers take the same path
        matches = ids.vin_matches(row.vin if row else "0" * 17, request.vin)
        if row is None or not matches:
            raise DomainError(NOT_FOUND)
        facts = CachedFacts(True, row.owner_person_id, ())
        relation = await self._relation(caller, "vehicle", row.vehicle_id, facts) or "proven"
        await self._grant(caller, "vehicle", row.vehicle_id)
        page = await self._first_page("vehicle", row.vehicle_id)
        return pb.LookupResponse(
            vehicle=vehicle_to_proto(
                row, relation=relation, caller_person_id=caller.person_id, is_staff=False
            ),
            violations=page.violations,
            next_cursor=page.next_cursor,
        )

    async def lookup_licence(self, request: pb.LookupLicenceRequest) -> pb.LookupResponse:
        caller = request.caller
        licence_no = ids.parse_id_number(request.licence_no)
        file_no = ids.parse_file_no(request.file_no)
        name = request.name.strip()
        if not name or len(name) > 64:
            raise DomainError(NOT_FOUND)
        await self._count_lookup(caller)
        async with self.db.connection() as conn:
            row = await PostgresReadModel(conn).licence_by_no(licence_no)
        holder_name = row.holder.name if row and row.holder else ""
        matches = _same(row.file_no if row else "", file_no) & _same(holder_name, name)
        if row is None or not matches:
            raise DomainError(NOT_FOUND)
        facts = CachedFacts(True, row.person_id, ())
        relation = await self._relation(caller, "licence", row.licence_id, facts) or "proven"
        await self._grant(caller, "licence", row.licence_id)
        page = await self._first_page("licence", row.licence_id)
        return pb.LookupResponse(
            licence=licence_to_proto(
                row,
                relation=relation,
                caller_person_id=caller.person_id,
                is_staff=False,
                today=today_in_shanghai(self.clock),
                points_limit=self.points_limit,
            ),
            violations=page.violations,
            next_cursor=page.next_cursor,
        )

    async def _grant(self, caller: common.Caller, kind: Kind, sid: str) -> None:
        try:
            await self.cache.grant_proof(caller.user_id, kind, sid, self.proof_grant_ttl_s)
        except RedisError as exc:
            raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "proof_grants"}) from exc

    # -- R-USR-2 counter reads (unmasked; the gateway audits every call) ----------------------
    async def staff_get_vehicle(self, request: pb.StaffGetVehicleRequest) -> pb.LookupResponse:
        caller = _require_staff(request.caller)
        plate = plate_type_from_proto(request.plate_type)
        plate_type, plate_number = ids.parse_plate(
            plate.value if plate else "", request.plate_number
        )
        async with self.db.connection() as conn:
            row = await PostgresReadModel(conn).vehicle_by_plate(plate_type.value, plate_number)
        if row is None:
            raise DomainError(NOT_FOUND)
        page = await self.list_violations(
            caller,
            "vehicle",
            row.vehicle_id,
            status=common.VIOLATION_STATUS_UNSPECIFIED,
            page=request.page,
        )
        return pb.LookupResponse(
            vehicle=vehicle_to_proto(row, relation="staff", caller_person_id="", is_staff=True),
            violations=page.violations,
            next_cursor=page.next_cursor,
        )

    async def staff_get_licence(self, request: pb.StaffGetLicenceRequest) -> pb.LookupResponse:
        caller = _require_staff(request.caller)
        licence_no = ids.parse_id_number(request.licence_no)
        async with self.db.connection() as conn:
            row = await PostgresReadModel(conn).licence_by_no(licence_no)
        if row is None:
            raise DomainError(NOT_FOUND)
        page = await self.list_violations(
            caller,
            "licence",
            row.licence_id,
            status=common.VIOLATION_STATUS_UNSPECIFIED,
            page=request.page,
        )
        return pb.LookupResponse(
            licence=licence_to_proto(
                row,
                relation="staff",
                caller_person_id="",
                is_staff=True,
                today=today_in_shanghai(self.clock),
                points_limit=self.points_limit,
            ),
            violations=page.violations,
            next_cursor=page.next_cursor,
        )


def _page_parts(status: str | None, limit: int, today: date, cursor: str) -> tuple[object, ...]:
    # pages hold no personal data, so one page serves every caller who may see the
    # subject; amounts due change at midnight (Asia/Shanghai), hence the day
    return (status or "*", limit, today, cursor)


def _require_staff(caller: common.Caller) -> common.Caller:
    if not caller.staff_id:
        raise DomainError(FORBIDDEN, details={"required": "staff"})
    return caller


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _page_response(
    rows: list[ViolationRow], limit: int, *, today: date
) -> pb.ListViolationsResponse:
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].violation_id)
    return pb.ListViolationsResponse(
        violations=[violation_to_proto(r, today=today) for r in rows],
        next_cursor=next_cursor,
    )
