"""``create_app``: the gateway's FastAPI application, built from settings and (optionally)
injected backends. Nothing connects here; the lifespan applies the gateway's migrations,
opens the backends, ensures the sandbox staff accounts and closes everything on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cqcommon.asyncutil import settle_heap
from cqcommon.migrations import apply_migrations
from cqcommon.settings import Settings
from fastapi import FastAPI

from cqgateway.audit import AuditMiddleware
from cqgateway.backends import Backends
from cqgateway.deps import GatewayContext
from cqgateway.errors import catalogue_markdown, install_error_handlers
from cqgateway.limits import BodySizeLimitMiddleware
from cqgateway.routers import auth, health, internal, me, violations
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
413 `BODY_TOO_LARGE` is sent for bodies over the size limit; 415
`UNSUPPORTED_MEDIA_TYPE` for a JSON endpoint called with another content type;
429 and 503 carry `Retry-After` when a time is known. The stable codes:

"""


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
    ctx = GatewayContext(
        settings=settings,
        tokens=TokenCodec(
            settings.token_secret,
            user_ttl_s=settings.token_ttl_s,
            staff_ttl_s=settings.staff_token_ttl_s,
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
                from cqgateway.staff import StaffRepository

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

    app = FastAPI(
        title="cq-traffic gateway",
        version="1.0.0",
        description=_DESCRIPTION + catalogue_markdown(),
        lifespan=lifespan,
    )
    app.state.gateway = ctx
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(violations.router)
    app.include_router(internal.router)
    # Added last = outermost: an oversized /internal/v1 request is refused *and* audited.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware, repository=ctx.audit_repository)
    return app
