"""The audit trail of the counter API (R-USR-2: every read of personal data by staff is
audited; API.md: every /internal/v1 call is audited).

``AuditMiddleware`` wraps every ``/internal/v1`` request. Routes and the staff
dependency fill an ``AuditContext`` (who, which subjects) kept in the ASGI scope; the
middleware holds back the ``http.response.start`` message until the row carrying the
final status code is committed. Only then does the first byte go out, so a response
with personal data is never sent unaudited: if the write fails on a successful call,
the held response is dropped and 503 ``AUDIT_UNAVAILABLE`` is sent instead. Failed and
denied calls (4xx, 5xx, including unhandled exceptions) are audited too; if their row
cannot be written the error answer still goes out (it reveals nothing) and the failure
is logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cqcommon import telemetry
from cqcommon.db import Database
from cqcommon.errors import AUDIT_UNAVAILABLE, DomainError
from cqcommon.text import forbidden_position
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cqgateway.errors import send_error

log = logging.getLogger("cqgateway.audit")

SCOPE_KEY = "cqgateway.audit"
AUDITED_PREFIX = "/internal/v1"
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass
class AuditContext:
    """What one audited call is about; filled in while the request runs."""

    staff_id: str | None = None
    role: str | None = None
    subjects: list[str] = field(default_factory=list)

    def add_subject(self, kind: str, value: str) -> None:
        """Record that the call concerns ``kind:value`` (e.g. ``vehicle:<id>``); blanks skip."""
        if value:
            item = f"{kind}:{value}"
            if item not in self.subjects:
                self.subjects.append(item)


def audit_context(conn: HTTPConnection) -> AuditContext | None:
    """The audit context of the current request (None outside /internal/v1)."""
    ctx = conn.scope.get(SCOPE_KEY)
    return ctx if isinstance(ctx, AuditContext) else None


@dataclass(frozen=True)
class AuditRecord:
    """One row of ``gateway.audit_log``."""

    audit_id: int
    occurred_at: datetime
    staff_id: str | None
    role: str | None
    method: str
    path: str
    query: str
    subjects: list[str]
    status_code: int
    trace_id: str | None


class AuditRepository:
    """Appends to and reads ``gateway.audit_log``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self,
        *,
        staff_id: str | None,
        role: str | None,
        method: str,
        path: str,
        query: str,
        subjects: list[str],
        status_code: int,
        trace_id: str | None,
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO audit_log (staff_id, role, method, path, query, subjects,"
                " status_code, trace_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (staff_id, role, method, path, query, subjects, status_code, trace_id),
            )

    async def list(
        self, *, subject: str | None, staff_id: str | None, before_id: int | None, limit: int
    ) -> list[AuditRecord]:
        """Newest first; ``subject`` matches one element of ``subjects`` exactly."""
        clauses: list[str] = []
        params: list[Any] = []
        if subject:
            clauses.append("%s = ANY(subjects)")
            params.append(subject)
        if staff_id:
            clauses.append("staff_id = %s")
            params.append(staff_id)
        if before_id is not None:
            clauses.append("audit_id < %s")
            params.append(before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT audit_id, occurred_at, staff_id, role, method, path, query, subjects,"
                f" status_code, trace_id FROM audit_log {where}"
                " ORDER BY audit_id DESC LIMIT %s",
                params,
            )
            rows = await cur.fetchall()
        return [
            AuditRecord(
                audit_id=int(r[0]),
                occurred_at=r[1],
                staff_id=r[2],
                role=r[3],
                method=str(r[4]),
                path=str(r[5]),
                query=str(r[6]),
                subjects=list(r[7] or []),
                status_code=int(r[8]),
                trace_id=r[9],
            )
            for r in rows
        ]


def current_trace_id(scope: Scope) -> str | None:
    """The OpenTelemetry trace id of this request, else the one in its ``traceparent``."""
    traced = telemetry.current_trace_id()
    if traced is not None:
        return traced
    for key, value in scope.get("headers", ()):
        if key == b"traceparent":
            match = _TRACEPARENT_RE.match(value.decode("latin-1").strip())
            if match:
                return match.group(1)
    return None


def storable(value: str) -> str:
    """``value``, percent-encoded when it holds a character the string check refuses.

    A request refused for such a character (``INVALID_CHARACTERS``) is still audited; its
    path must not make the audit write itself fail (PostgreSQL refuses NUL in text).
    """
    return value if forbidden_position(value) is None else quote(value, safe="/?&=")


class AuditMiddleware:
    """Writes one audit row per /internal/v1 request before its response leaves."""

    def __init__(self, app: ASGIApp, repository: Callable[[], AuditRepository | None]) -> None:
        self.app = app
        # A callable because the repository exists only once the lifespan has opened the DB.
        self._repository = repository

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(AUDITED_PREFIX):
            await self.app(scope, receive, send)
            return
        ctx = AuditContext()
        scope[SCOPE_KEY] = ctx
        state = {"started": False, "suppressed": False}

        async def write(status: int) -> bool:
            repo = self._repository()
            try:
                if repo is None:
                    raise RuntimeError("audit repository not available (lifespan not run)")
                await repo.append(
                    staff_id=ctx.staff_id,
                    role=ctx.role,
                    method=str(scope.get("method", "")),
                    path=storable(str(scope.get("path", ""))),
                    query=storable(bytes(scope.get("query_string", b"")).decode("latin-1")),
                    subjects=list(ctx.subjects),
                    status_code=status,
                    trace_id=current_trace_id(scope),
                )
                return True
            except Exception:
                log.exception(
                    "audit write failed for %s %s", scope.get("method"), scope.get("path")
                )
                return False

        async def audited_send(message: Message) -> None:
            if state["suppressed"]:
                return  # the body of a response we replaced
            if message["type"] == "http.response.start":
                status = int(message["status"])
                ok = await write(status)
                state["started"] = True
                if not ok and status < 400:
                    # R-USR-2: an unaudited read must not reach the caller.
                    state["suppressed"] = True
                    await send_error(
                        send, DomainError(AUDIT_UNAVAILABLE, details={"retry_after_s": 5})
                    )
                    return
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not state["started"]:
                # ServerErrorMiddleware (outside us) answers 500; record that answer.
                await write(500)
            raise
