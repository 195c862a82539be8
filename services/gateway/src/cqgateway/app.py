"""``create_app``: the gateway's FastAPI application, built from settings and (optionally)
injected backends. Nothing connects here; the lifespan applies the gateway's migrations,
opens the backends, ensures the sandbox staff accounts and closes everything on exit.

``create_app`` refuses to build a gateway outside sandbox mode whose ``TOKEN_SECRET`` is the
built-in development value or shorter than 32 bytes: anyone who has read this repository
could otherwise sign a supervisor token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cqcommon.asyncutil import settle_heap
from cqcommon.migrations import apply_migrations
from cqcommon.settings import Settings
from fastapi import FastAPI

from cqgateway.audit import AuditMiddleware
from cqgateway.backends import Backends
from cqgateway.deps import GatewayContext
from cqgateway.errors import catalogue_markdown, install_error_handlers
from cqgateway.guards import SecurityHeadersMiddleware, StringCheckMiddleware
from cqgateway.limits import BodySizeLimitMiddleware
from cqgateway.metrics import MetricsMiddleware
from cqgateway.openapi import document_errors
from cqgateway.routers import (
    alipay_notify,
    auth,
    counter_payments,
    follows,
    handlings,
    health,
    internal,
    me,
    metrics,
    nightly,
    not_built,
    payments,
    violations,
)
from cqgateway.staff import StaffRepository
from cqgateway.tokens import TokenCodec

log = logging.getLogger("cqgateway")

#: services/gateway/migrations (this file is services/gateway/src/cqgateway/app.py).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

_DESCRIPTION = """\
HTTP edge of the Chongqing traffic-violation system: the Alipay mini-program API
(`/api/v1`, user tokens from `POST /api/v1/auth/alipay`) and the police counter API
(`/internal/v1`, staff tokens from `POST /internal/v1/auth/login`; every call audited).

## Errors

Every non-2xx body is
`{"error": {"code": "…", "message_zh": "…", "message_en": "…", "details": {…}}}`.
422 `VALIDATION_FAILED` lists the offending fields in `details.fields`;
400 `INVALID_CHARACTERS` refuses control, bidirectional and zero-width characters in any
path, query or body string (`details.field` names where); 413 `BODY_TOO_LARGE` is sent for
bodies over the size limit; 415 `UNSUPPORTED_MEDIA_TYPE` for a JSON endpoint called with
another content type; 429 and 503 carry `Retry-After` when a time is known (503
`MAINTENANCE_WINDOW`: the seconds until payments resume); endpoints of the contract that
are not built yet answer 501 `NOT_IMPLEMENTED` (after authentication). The one exception
is Alipay's notification, `POST /api/v1/alipay/notify`: a form in, plain text out
(`success` or `fail`), as Alipay expects.
Each operation lists the codes it can answer in `x-error-codes`. The stable codes:

"""


class InsecureSecretError(RuntimeError):
    """The gateway would sign tokens with a secret anyone can know."""


class GatewayApp(FastAPI):
    """FastAPI whose /openapi.json documents every error answer (``cqgateway.openapi``)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = document_errors(self, super().openapi())
        return self.openapi_schema


def check_secrets(settings: Settings) -> None:
    """Outside sandbox mode, refuse the development ``TOKEN_SECRET`` or one under 32 bytes
    (and a ``TOKEN_SECRET_PREVIOUS`` under 32 bytes)."""
    weak = settings.insecure_secrets()
    for name in ("TOKEN_SECRET", "TOKEN_SECRET_PREVIOUS"):
        if not settings.sandbox_mode and name in weak:
            raise InsecureSecretError(
                f"{name} is the built-in development value or shorter than 32 bytes: "
                "set a random secret of at least 32 bytes outside sandbox mode"
            )


async def migrate(conninfo: str) -> list[str]:
    """Apply the gateway's migrations to schema ``gateway``; returns what was applied."""
    return await apply_migrations(conninfo, "gateway", MIGRATIONS_DIR)


def create_app(
    settings: Settings,
    backends: Backends | None = None,
    *,
    migrate_on_start: bool = True,
    settle_heap_on_start: bool = False,
) -> FastAPI:
    """The gateway app. ``backends`` (default: built from ``settings`` at start) are opened
    by the lifespan and closed when it ends: the app owns what it is given.
    ``settle_heap_on_start`` is for the server process (``cqcommon.asyncutil.settle_heap``),
    not for tests that build many apps in one process."""
    check_secrets(settings)
    ctx = GatewayContext(
        settings=settings,
        tokens=TokenCodec(
            settings.token_secret,
            user_ttl_s=settings.token_ttl_s,
            staff_ttl_s=settings.staff_token_ttl_s,
            previous_secret=settings.token_secret_previous,
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        active = backends if backends is not None else Backends.from_settings(settings)
        try:
            if migrate_on_start:
                applied = await apply_migrations(
                    active.db.conninfo, active.db.schema, MIGRATIONS_DIR
                )
                for name in applied:
                    log.info("applied migration %s", name)
            await active.open()
            if settings.sandbox_mode:
                await StaffRepository(active.db).ensure_sandbox_accounts(
                    settings.sandbox_staff_password
                )
            ctx.attach(active)
            if settle_heap_on_start:
                settle_heap()
            yield
        finally:
            ctx.detach()
            await active.close()

    app = GatewayApp(
        title="cq-traffic gateway",
        version="1.0.0",
        description=_DESCRIPTION + catalogue_markdown(),
        lifespan=lifespan,
        # No 307 to a Location built from the Host header (and before authentication):
        # a path with a trailing slash is simply unknown, 404 NOT_FOUND.
        redirect_slashes=False,
    )
    app.state.gateway = ctx
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(violations.router)
    app.include_router(handlings.router)
    app.include_router(payments.router)
    app.include_router(alipay_notify.router)
    app.include_router(internal.router)
    app.include_router(counter_payments.router)
    app.include_router(follows.router)
    app.include_router(follows.internal_router)
    app.include_router(nightly.router)
    app.include_router(not_built.router)
    # Added later = further out. Order of a request: metrics, security headers, audit, body
    # size, string check, routes; so an oversized or refused /internal/v1 request is audited,
    # every answer (the middlewares' own too) gets the security headers, and is counted.
    app.add_middleware(StringCheckMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware, repository=ctx.audit_repository)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app
