"""FastAPI dependencies: the per-app context, authenticated callers, roles, content type.

``CurrentUser`` (mini-program, ``typ=user`` tokens on /api/v1) and ``StaffUser`` /
``SupervisorUser`` (counter, ``typ=staff`` tokens on /internal/v1) are ``Annotated``
aliases in the full-stack-fastapi-template style; each carries the
``cqtraffic.common.v1.Caller`` that every gRPC request needs. A staff token counts only
while its account exists and is active, and with the account's current role (checked
through ``StaffAccountCache``), not the role written in the token. Staff dependencies
also record who is calling in the request's audit context, so denied calls are audited
with the caller's identity.

``cqgateway.openapi`` reads which of these a route depends on (``AUTH_DEPENDENCIES``,
``RoleCheck``, ``require_json``) to document its 401, 403 and 415 answers.
"""

from __future__ import annotations

import email.message
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from cqcommon.errors import (
    FORBIDDEN,
    SERVICE_UNAVAILABLE,
    TOKEN_INVALID,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    DomainError,
)
from cqcommon.grpc_client import call
from cqcommon.settings import Settings
from cqtraffic.common.v1.types_pb2 import Caller
from cqtraffic.query.v1 import query_pb2
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cqgateway.access_sync import AccessSync, QueryAccessProbe
from cqgateway.audit import AuditRepository, audit_context
from cqgateway.backends import Backends
from cqgateway.health import ReadinessChecker
from cqgateway.persons import PersonResolver
from cqgateway.staff import StaffAccountCache, StaffRepository
from cqgateway.tokens import StaffRole, TokenCodec


@dataclass
class GatewayContext:
    """Per-app state: settings and token codec from the start, backends once opened."""

    settings: Settings
    tokens: TokenCodec
    backends: Backends | None = None
    readiness: ReadinessChecker | None = None
    staff: StaffRepository | None = None
    staff_accounts: StaffAccountCache | None = None
    audit: AuditRepository | None = field(default=None)
    persons: PersonResolver | None = None
    #: Read-your-writes after a follow starts or ends (``cqgateway.access_sync``).
    access: AccessSync | None = None

    def attach(self, backends: Backends) -> None:
        self.backends = backends
        self.readiness = ReadinessChecker(backends, sandbox_mode=self.settings.sandbox_mode)
        self.staff = StaffRepository(backends.db)
        self.staff_accounts = StaffAccountCache(
            self.staff, ttl_s=self.settings.staff_account_check_ttl_s
        )
        self.audit = AuditRepository(backends.db)
        deadline = self.settings.grpc_deadline_s

        async def resolve(user_id: str) -> str:
            request = query_pb2.ResolveUserRequest(alipay_user_id=user_id)
            answer = await call(backends.query.ResolveUser, request, timeout_s=deadline)
            return str(answer.person_id)

        self.persons = PersonResolver(resolve)
        self.access = AccessSync(QueryAccessProbe(backends.query), probe_deadline_s=deadline)

    def detach(self) -> None:
        self.backends = self.readiness = self.staff = self.audit = None
        self.staff_accounts = None
        self.persons = None
        self.access = None

    def audit_repository(self) -> AuditRepository | None:
        return self.audit

    def require_backends(self) -> Backends:
        """The open backends. Called inside routes (not as a dependency) so that bad input
        is refused with its 4xx even while the gateway is starting."""
        if self.backends is None:
            raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "starting"})
        return self.backends

    def access_sync(self) -> AccessSync:
        """The read-your-writes waiter (built over the open backends' query stub when the
        lifespan did not attach one, as in tests that attach stub backends)."""
        if self.access is None:
            probe = QueryAccessProbe(self.require_backends().query)
            self.access = AccessSync(probe, probe_deadline_s=self.settings.grpc_deadline_s)
        return self.access


async def get_context(request: Request) -> GatewayContext:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off per call
    ctx = request.app.state.gateway
    assert isinstance(ctx, GatewayContext)
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


# -- authentication ---------------------------------------------------------------------
_user_bearer = HTTPBearer(
    auto_error=False, scheme_name="UserToken", description="Token from POST /api/v1/auth/alipay."
)
_staff_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description="Token from POST /internal/v1/auth/login.",
)


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    # A header that is there but is not "Bearer <token>" is a bad token, not a missing one.
    if request.headers.get("authorization"):
        raise DomainError(TOKEN_INVALID, details={"reason": "not_bearer"})
    raise DomainError(UNAUTHENTICATED)


@dataclass(frozen=True)
class AuthenticatedUser:
    """A mini-program user: Alipay user id and registry person id ("" if none, R-USR-1)."""

    user_id: str
    person_id: str
    caller: Caller


@dataclass(frozen=True)
class AuthenticatedStaff:
    staff_id: str
    role: StaffRole
    caller: Caller


async def current_user(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_user_bearer)],
) -> AuthenticatedUser:
    claims = ctx.tokens.verify_user(_token(request, credentials))
    person_id = claims.person_id
    if not person_id and ctx.persons is not None:
        # a token from before the person reached the read model (cqgateway.persons)
        person_id = await ctx.persons.person_of(claims.user_id)
    return AuthenticatedUser(
        claims.user_id,
        person_id,
        Caller(user_id=claims.user_id, person_id=person_id),
    )


async def current_staff(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)],
) -> AuthenticatedStaff:
    claims = ctx.tokens.verify_staff(_token(request, credentials))
    audit = audit_context(request)
    if audit is not None:
        audit.staff_id = claims.staff_id
    if ctx.staff_accounts is None:
        raise DomainError(SERVICE_UNAVAILABLE, details={"reason": "starting"})
    # A forged-role or old token of a deleted or disabled account is refused here; the
    # role that counts is the account's current one (a demoted supervisor is a clerk now).
    account = await ctx.staff_accounts.active_account(claims.staff_id)
    if account is None:
        raise DomainError(TOKEN_INVALID, details={"reason": "account_not_active"})
    if audit is not None:
        audit.role = account.role
    return AuthenticatedStaff(
        account.staff_id,
        account.role,
        Caller(staff_id=account.staff_id, staff_role=account.role),
    )


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
StaffUser = Annotated[AuthenticatedStaff, Depends(current_staff)]

#: The dependencies that authenticate a caller (401 when they refuse).
AUTH_DEPENDENCIES: tuple[Callable[..., Awaitable[object]], ...] = (current_user, current_staff)


class RoleCheck:
    """A dependency admitting only staff with one of ``roles`` (403 ``FORBIDDEN`` otherwise).

    A class rather than a closure so that the OpenAPI builder can see that a route checks a
    role and document its 403."""

    def __init__(self, *roles: StaffRole) -> None:
        self.roles = roles

    async def __call__(self, staff: StaffUser) -> AuthenticatedStaff:
        if staff.role not in self.roles:
            raise DomainError(FORBIDDEN, details={"required_role": list(self.roles)})
        return staff


def require_role(*roles: StaffRole) -> RoleCheck:
    """``Depends(require_role("supervisor"))``: staff with one of ``roles`` only."""
    return RoleCheck(*roles)


SupervisorUser = Annotated[AuthenticatedStaff, Depends(require_role("supervisor"))]


# -- content type -----------------------------------------------------------------------
def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def require_json(request: Request) -> None:
    """415 ``UNSUPPORTED_MEDIA_TYPE`` when a body is sent as anything but JSON.

    FastAPI would otherwise try to validate the raw bytes and answer a vague 422.
    """
    has_body = request.headers.get("transfer-encoding", "").lower() == "chunked" or (
        request.headers.get("content-length", "0") not in ("", "0")
    )
    content_type = request.headers.get("content-type", "")
    if has_body and not _is_json(content_type):
        raise DomainError(UNSUPPORTED_MEDIA_TYPE, details={"expected": "application/json"})


JsonBody = Depends(require_json)
