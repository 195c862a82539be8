"""A lost database connection at the gateway answers 503 with the error body, never 500.

Found by the PostgreSQL-restart fault drill (bench/drills): the staff account check read a
pooled connection that died with the server, and the request was answered 500
``INTERNAL_ERROR``; a restart must answer 503 ``SERVICE_UNAVAILABLE``, which a client retries.
"""

from __future__ import annotations

import httpx
import psycopg
from cqgateway.errors import install_error_handlers
from fastapi import FastAPI


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def _get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        return await client.get("/boom")


async def test_a_lost_database_connection_answers_503_with_the_error_body() -> None:
    shutdown = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    r = await _get(_app(shutdown))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


async def test_any_other_error_still_answers_500() -> None:
    r = await _get(_app(RuntimeError("a bug")))
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "INTERNAL_ERROR"
