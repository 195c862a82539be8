"""Entry point: ``python -m cqgateway serve`` (uvicorn) and ``python -m cqgateway migrate``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys

from cqcommon.settings import Settings

from cqgateway.app import create_app, migrate

log = logging.getLogger("cqgateway")


def _configure_logging(settings: Settings) -> None:
    try:
        logs = importlib.import_module("cqcommon.logs")
        logs.configure_logging("gateway", settings.log_level)
    except (ImportError, AttributeError):  # pragma: no cover - shared logs module optional
        logging.basicConfig(level=settings.log_level)


def _instrument(app: object, settings: Settings) -> None:
    """Tracing if the shared telemetry module and the FastAPI instrumentation are present."""
    try:
        telemetry = importlib.import_module("cqcommon.telemetry")
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        log.warning("telemetry unavailable: serving without tracing")
        return
    telemetry.setup_telemetry("gateway", settings)
    if telemetry.tracing_active():  # no exporter: no per-request span work
        FastAPIInstrumentor.instrument_app(app)  # type: ignore[arg-type]


def serve(settings: Settings) -> None:
    import uvicorn

    app = create_app(settings, settle_heap_on_start=True)
    _instrument(app, settings)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # keep our JSON logging
        access_log=False,
        lifespan="on",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cqgateway")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = Settings()
    _configure_logging(settings)
    if args.command == "migrate":
        for name in asyncio.run(migrate(settings.database_url)):
            log.info("applied migration %s", name)
        return 0
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
