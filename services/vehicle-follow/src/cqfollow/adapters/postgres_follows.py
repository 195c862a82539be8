"""PostgreSQL repositories of follows and follow requests (the ``FollowRepository`` and
``FollowRequestRepository`` ports). They work inside the caller's transaction; the unit of
work (``adapters.unit_of_work``) turns a constraint the database enforces (a second running
follow of one follower and vehicle, a second waiting request) into its stable error.

Every read or end that must not reveal someone else's row puts the caller in the WHERE
clause: one statement answers "no such id" and "not yours" alike (and a malformed id is the
nil UUID, which matches nothing). Ends are conditional on ``ended_at IS NULL`` and return
the row they changed, so of two racing ends exactly one gets the row (and publishes).

Quota counts (R-FOL-3/4/8) are taken after the caller locked the follower's quota row and
the vehicle's row (``lock_follower``, ``PostgresRegistryReader.lock_vehicle``); under READ
COMMITTED each count is a fresh snapshot, so it sees every activation that held those locks
before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cqcommon.db import Conn, uuid_or_nil

from cqfollow.domain.follows import (
    Consent,
    EndReason,
    Follow,
    FollowerRow,
    FollowRequest,
    FollowRow,
    RequestRow,
    RequestState,
    Target,
    VehicleQuotaUse,
)


def _follow_columns(alias: str) -> str:
    a = f"{alias}."
    return (
        f"{a}follow_id::text, {a}follower_key, {a}follower_user_id,"
        f" {a}follower_person_id::text, {a}target, {a}vehicle_id::text, {a}licence_id::text,"
        f" {a}consent, {a}started_at, {a}expires_at, {a}ended_at, {a}end_reason,"
        f" {a}request_id::text"
    )


FOLLOW_COLUMNS = _follow_columns("f")
_FOLLOW_WIDTH = 13
#: a follow counts while running and not lapsed (R-FOL-5)
_ACTIVE = "f.ended_at IS NULL AND (f.expires_at IS NULL OR f.expires_at > %(now)s)"

_PENDING_STATES = "('pending_owner_approval', 'pending_sms_code')"
REQUEST_COLUMNS = (
    "r.request_id::text, r.requester_user_id, r.requester_person_id::text, r.vehicle_id::text,"
    " r.owner_person_id::text, r.consent, r.state, r.created_at, r.expires_at, r.decided_at,"
    " r.follow_id::text, r.sms_phone_masked, r.sms_resend_at"
)
_REQUEST_WIDTH = 13


def follow_from_row(row: tuple[Any, ...]) -> Follow:
    return Follow(
        follow_id=row[0],
        follower_key=row[1],
        follower_user_id=row[2],
        follower_person_id=row[3],
        target=Target(row[4]),
        vehicle_id=row[5],
        licence_id=row[6],
        consent=Consent(row[7]),
        started_at=row[8],
        expires_at=row[9],
        ended_at=row[10],
        end_reason=EndReason(row[11]) if row[11] else None,
        request_id=row[12],
    )


def request_from_row(row: tuple[Any, ...]) -> FollowRequest:
    return FollowRequest(
        request_id=row[0],
        requester_user_id=row[1],
        requester_person_id=row[2],
        vehicle_id=row[3],
        owner_person_id=row[4],
        consent=Consent(row[5]),
        state=RequestState(row[6]),
        created_at=row[7],
        expires_at=row[8],
        decided_at=row[9],
        follow_id=row[10],
        sms_phone_masked=row[11],
        sms_resend_at=row[12],
    )


def _keyset(
    after: tuple[datetime, str] | None, column: str, id_column: str
) -> tuple[str, dict[str, Any]]:
    if after is None:
        return "", {}
    return (
        f" AND ({column}, {id_column}) > (%(after_at)s, %(after_id)s)",
        {"after_at": after[0], "after_id": after[1]},
    )


class PostgresFollowRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(self, sql: str, params: Any) -> Follow | None:
        cur = await self.conn.execute(sql, params)
        row = await cur.fetchone()
        return follow_from_row(row) if row else None

    async def lock_follower(self, follower_key: str, *, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO follower_quotas (follower_key, created_at) VALUES (%s, %s)"
            " ON CONFLICT (follower_key) DO NOTHING",
            (follower_key, now),
        )
        await self.conn.execute(
            "SELECT 1 FROM follower_quotas WHERE follower_key = %s FOR UPDATE", (follower_key,)
        )

    async def add(self, follow: Follow) -> None:
        await self.conn.execute(
            "INSERT INTO follows (follow_id, follower_key, follower_user_id, follower_person_id,"
            " target, vehicle_id, licence_id, consent, request_id, started_at, expires_at,"
            " ended_at, end_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                follow.follow_id,
                follow.follower_key,
                follow.follower_user_id,
                follow.follower_person_id,
                follow.target.value,
                follow.vehicle_id,
                follow.licence_id,
                follow.consent.value,
                follow.request_id,
                follow.started_at,
                follow.expires_at,
                follow.ended_at,
                follow.end_reason.value if follow.end_reason else None,
            ),
        )

    async def running_of(self, follower_key: str, target: Target, subject_id: str) -> Follow | None:
        column = "vehicle_id" if target is Target.VEHICLE else "licence_id"
        return await self._one(
            f"SELECT {FOLLOW_COLUMNS} FROM follows f WHERE f.follower_key = %s"
            f" AND f.target = %s AND f.{column} = %s AND f.ended_at IS NULL",
            (follower_key, target.value, uuid_or_nil(subject_id)),
        )

    async def vehicle_quota_use(
        self,
        *,
        follower_key: str,
        vehicle_id: str | None,
        now: datetime,
        year: tuple[datetime, datetime],
    ) -> VehicleQuotaUse:
        cur = await self.conn.execute(
            "SELECT"
            f" (SELECT count(*) FROM follows f WHERE f.follower_key = %(key)s"
            f"  AND f.target = 'vehicle' AND {_ACTIVE}),"
            " (SELECT count(*) FROM follows f WHERE f.follower_key = %(key)s"
            "  AND f.target = 'vehicle' AND f.started_at >= %(y0)s AND f.started_at < %(y1)s),"
            f" (SELECT count(*) FROM follows f WHERE f.vehicle_id = %(vehicle)s AND {_ACTIVE})",
            {
                "key": follower_key,
                "now": now,
                "y0": year[0],
                "y1": year[1],
                "vehicle": uuid_or_nil(vehicle_id) if vehicle_id else None,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        return VehicleQuotaUse(active=row[0], chances_used=row[1], vehicle_followers=row[2])

    async def active_licence_follows(self, follower_key: str, *, now: datetime) -> int:
        cur = await self.conn.execute(
            "SELECT count(*) FROM follows f WHERE f.follower_key = %(key)s"
            f" AND f.target = 'licence' AND {_ACTIVE}",
            {"key": follower_key, "now": now},
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def end_for_follower(
        self, follow_id: str, *, follower_key: str, target: Target, reason: str, now: datetime
    ) -> Follow | None:
        return await self._one(
            f"UPDATE follows f SET ended_at = %s, end_reason = %s WHERE f.follow_id = %s"
            f" AND f.follower_key = %s AND f.target = %s AND f.ended_at IS NULL"
            f" RETURNING {FOLLOW_COLUMNS}",
            (now, reason, uuid_or_nil(follow_id), follower_key, target.value),
        )

    async def end_for_owner(
        self, follow_id: str, *, owner_person_id: str, reason: str, now: datetime
    ) -> Follow | None:
        return await self._one(
            f"UPDATE follows f SET ended_at = %s, end_reason = %s FROM vehicles v"
            f" WHERE f.follow_id = %s AND f.target = 'vehicle' AND f.ended_at IS NULL"
            f" AND v.vehicle_id = f.vehicle_id AND v.owner_person_id = %s"
            f" RETURNING {FOLLOW_COLUMNS}",
            (now, reason, uuid_or_nil(follow_id), uuid_or_nil(owner_person_id)),
        )

    async def end_lapsed(self, follow_id: str, *, now: datetime) -> Follow | None:
        return await self._one(
            f"UPDATE follows f SET ended_at = %s, end_reason = 'expired' WHERE f.follow_id = %s"
            f" AND f.ended_at IS NULL AND f.expires_at <= %s RETURNING {FOLLOW_COLUMNS}",
            (now, uuid_or_nil(follow_id), now),
        )

    async def follows_of(self, follower_key: str, *, now: datetime) -> list[FollowRow]:
        cur = await self.conn.execute(
            f"SELECT {FOLLOW_COLUMNS}, coalesce(v.plate_number, ''), coalesce(v.plate_type, ''),"
            " coalesce(p.name, '')"
            " FROM follows f LEFT JOIN vehicles v ON v.vehicle_id = f.vehicle_id"
            " LEFT JOIN licences l ON l.licence_id = f.licence_id"
            " LEFT JOIN persons p ON p.person_id = l.person_id"
            f" WHERE f.follower_key = %(key)s AND {_ACTIVE} ORDER BY f.started_at, f.follow_id",
            {"key": follower_key, "now": now},
        )
        n = _FOLLOW_WIDTH
        return [
            FollowRow(follow_from_row(row[:n]), row[n], row[n + 1], row[n + 2])
            for row in await cur.fetchall()
        ]

    async def followers_of(self, owner_person_id: str, *, now: datetime) -> list[FollowerRow]:
        cur = await self.conn.execute(
            f"SELECT {FOLLOW_COLUMNS}, v.plate_number, p.name"
            " FROM follows f JOIN vehicles v ON v.vehicle_id = f.vehicle_id"
            " LEFT JOIN persons p ON p.person_id = f.follower_person_id"
            f" WHERE v.owner_person_id = %(owner)s AND f.target = 'vehicle' AND {_ACTIVE}"
            " ORDER BY f.started_at, f.follow_id",
            {"owner": uuid_or_nil(owner_person_id), "now": now},
        )
        n = _FOLLOW_WIDTH
        return [
            FollowerRow(follow_from_row(row[:n]), row[n], row[n + 1])
            for row in await cur.fetchall()
        ]

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Follow]:
        clause, params = _keyset(after, "f.expires_at", "f.follow_id")
        cur = await self.conn.execute(
            f"SELECT {FOLLOW_COLUMNS} FROM follows f WHERE f.ended_at IS NULL"
            f" AND f.expires_at IS NOT NULL AND f.expires_at <= %(now)s{clause}"
            " ORDER BY f.expires_at, f.follow_id LIMIT %(limit)s",
            {"now": now, "limit": limit, **params},
        )
        return [follow_from_row(row) for row in await cur.fetchall()]


class PostgresFollowRequestRepository:
    """Works inside the caller's transaction (``conn``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(self, sql: str, params: Any) -> FollowRequest | None:
        cur = await self.conn.execute(sql, params)
        row = await cur.fetchone()
        return request_from_row(row) if row else None

    async def add(self, request: FollowRequest) -> None:
        await self.conn.execute(
            "INSERT INTO follow_requests (request_id, requester_user_id, requester_person_id,"
            " vehicle_id, owner_person_id, consent, state, created_at, expires_at, decided_at,"
            " follow_id, sms_phone_masked, sms_resend_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                request.request_id,
                request.requester_user_id,
                request.requester_person_id,
                request.vehicle_id,
                request.owner_person_id,
                request.consent.value,
                request.state.value,
                request.created_at,
                request.expires_at,
                request.decided_at,
                request.follow_id,
                request.sms_phone_masked,
                request.sms_resend_at,
            ),
        )

    async def get_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        return await self._one(
            f"SELECT {REQUEST_COLUMNS} FROM follow_requests r"
            " WHERE r.request_id = %s AND r.requester_user_id = %s",
            (uuid_or_nil(request_id), requester_user_id),
        )

    async def lock_for_requester(
        self, request_id: str, requester_user_id: str
    ) -> FollowRequest | None:
        return await self._one(
            f"SELECT {REQUEST_COLUMNS} FROM follow_requests r"
            " WHERE r.request_id = %s AND r.requester_user_id = %s FOR UPDATE",
            (uuid_or_nil(request_id), requester_user_id),
        )

    async def lock_for_owner(self, request_id: str, owner_person_id: str) -> FollowRequest | None:
        return await self._one(
            f"SELECT {REQUEST_COLUMNS} FROM follow_requests r"
            " WHERE r.request_id = %s AND r.owner_person_id = %s FOR UPDATE",
            (uuid_or_nil(request_id), uuid_or_nil(owner_person_id)),
        )

    async def pending_of(self, requester_user_id: str, vehicle_id: str) -> FollowRequest | None:
        return await self._one(
            f"SELECT {REQUEST_COLUMNS} FROM follow_requests r WHERE r.requester_user_id = %s"
            f" AND r.vehicle_id = %s AND r.state IN {_PENDING_STATES} FOR UPDATE",
            (requester_user_id, uuid_or_nil(vehicle_id)),
        )

    async def save(self, request: FollowRequest) -> None:
        await self.conn.execute(
            "UPDATE follow_requests SET state = %s, decided_at = %s, follow_id = %s,"
            " sms_phone_masked = %s, sms_resend_at = %s WHERE request_id = %s",
            (
                request.state.value,
                request.decided_at,
                request.follow_id,
                request.sms_phone_masked,
                request.sms_resend_at,
                request.request_id,
            ),
        )

    async def row_of(self, request: FollowRequest) -> RequestRow:
        cur = await self.conn.execute(
            "SELECT (SELECT plate_number FROM vehicles WHERE vehicle_id = %(v)s),"
            " (SELECT plate_type FROM vehicles WHERE vehicle_id = %(v)s),"
            " (SELECT name FROM persons WHERE person_id = %(p)s)",
            {"v": request.vehicle_id, "p": request.requester_person_id},
        )
        row = await cur.fetchone()
        assert row is not None
        return RequestRow(request, row[0] or "", row[1] or "", row[2])

    async def _rows(self, where: str, params: dict[str, Any]) -> list[RequestRow]:
        cur = await self.conn.execute(
            f"SELECT {REQUEST_COLUMNS}, coalesce(v.plate_number, ''),"
            " coalesce(v.plate_type, ''), p.name FROM follow_requests r"
            " LEFT JOIN vehicles v ON v.vehicle_id = r.vehicle_id"
            " LEFT JOIN persons p ON p.person_id = r.requester_person_id"
            f" WHERE {where} ORDER BY r.created_at, r.request_id",
            params,
        )
        n = _REQUEST_WIDTH
        return [
            RequestRow(request_from_row(row[:n]), row[n], row[n + 1], row[n + 2])
            for row in await cur.fetchall()
        ]

    async def incoming(self, owner_person_id: str, *, now: datetime) -> list[RequestRow]:
        return await self._rows(
            "r.owner_person_id = %(owner)s AND r.state = 'pending_owner_approval'"
            " AND r.expires_at > %(now)s",
            {"owner": uuid_or_nil(owner_person_id), "now": now},
        )

    async def waiting_of(self, requester_user_id: str, *, now: datetime) -> list[RequestRow]:
        return await self._rows(
            f"r.requester_user_id = %(user)s AND r.state IN {_PENDING_STATES}"
            " AND r.expires_at > %(now)s",
            {"user": requester_user_id, "now": now},
        )

    async def expire(self, request_id: str, *, now: datetime) -> bool:
        cur = await self.conn.execute(
            "UPDATE follow_requests SET state = 'expired', decided_at = %s, sms_resend_at = NULL"
            f" WHERE request_id = %s AND state IN {_PENDING_STATES} AND expires_at <= %s",
            (now, uuid_or_nil(request_id), now),
        )
        return cur.rowcount == 1

    async def lapsed_page(
        self, *, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[FollowRequest]:
        clause, params = _keyset(after, "r.expires_at", "r.request_id")
        cur = await self.conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM follow_requests r"
            f" WHERE r.state IN {_PENDING_STATES} AND r.expires_at <= %(now)s{clause}"
            " ORDER BY r.expires_at, r.request_id LIMIT %(limit)s",
            {"now": now, "limit": limit, **params},
        )
        return [request_from_row(row) for row in await cur.fetchall()]
