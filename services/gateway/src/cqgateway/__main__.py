"""Entry point: ``python -m cqgateway serve`` (uvicorn), ``python -m cqgateway migrate`` and
``python -m cqgateway staff disable|enable <username>`` (a disabled account's tokens stop
working within ``STAFF_ACCOUNT_CHECK_TTL_S`` seconds)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any, Literal

import uvicorn
from cqcommon import telemetry
from cqcommon.db import Database
from cqcommon.logs import configure_logging
from cqcommon.settings import Settings
from uvicorn.config import LifespanType

from cqgateway.app import create_app, migrate
from cqgateway.backends import GATEWAY_SCHEMA
from cqgateway.staff import StaffRepository

log = logging.getLogger("cqgateway")

StaffAction = Literal["disable", "enable"]


def _instrument(app: Any, settings: Settings) -> None:
    """Tracing, when an exporter is configured (no per-request span work otherwise)."""
    telemetry.setup_telemetry("gateway", settings)
    if telemetry.tracing_active():
        # imported only when tracing: the instrumentation costs about a tenth of the
        # gateway's start
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)


def uvicorn_config(
    app: Any, settings: Settings, *, lifespan: LifespanType = "on"
) -> uvicorn.Config:
    """How the gateway is served: no ``server`` banner (it names the software to attackers),
    our JSON logs instead of uvicorn's, no access log."""
    return uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan=lifespan,
    )


def serve(settings: Settings) -> None:
    app = create_app(settings, settle_heap_on_start=True)
    _instrument(app, settings)
    uvicorn.Server(uvicorn_config(app, settings)).run()


async def staff_command(settings: Settings, action: StaffAction, username: str) -> bool:
    """Disable or enable ``username``; False when there is no such account."""
    db = Database(settings.database_url, GATEWAY_SCHEMA, min_size=1, max_size=1)
    await db.open(wait=True)
    try:
        return await StaffRepository(db).set_active(username, action == "enable")
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cqgateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the HTTP API (uvicorn)")
    commands.add_parser("migrate", help="apply the gateway's migrations")
    staff = commands.add_parser("staff", help="disable or enable a counter staff account")
    staff.add_argument("action", choices=["disable", "enable"])
    staff.add_argument("username")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    if args.command == "migrate":
        for name in asyncio.run(migrate(settings.database_url)):
            log.info("applied migration %s", name)
        return 0
    if args.command == "staff":
        action: StaffAction = "enable" if args.action == "enable" else "disable"
        if not asyncio.run(staff_command(settings, action, args.username)):
            log.error("no staff account %s", args.username)
            return 1
        log.info("staff account %s: %sd", args.username, action)
        return 0
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
