"""The gateway's error model: API.md's error body, the one ErrorKind → HTTP status table,
and the exception handlers that guarantee every failure leaves as that body.

Services raise ``DomainError`` (it crosses gRPC in ``error-bin`` trailing metadata and
``cqcommon.grpc_client.call`` rebuilds it); FastAPI and Starlette raise their own
exceptions for bad input, unknown routes and wrong methods. Each is turned into
``{"error": {"code", "message_zh", "message_en", "details"}}`` here and nowhere else, so a
route never formats an error by hand and nothing leaks a traceback (R-ERR-1).

Two ways out, one body: ``error_response`` for exception handlers, ``send_error`` for the
pure ASGI middlewares (body size, audit, string check) that answer before any route runs.
Both carry the security headers (``SECURITY_HEADERS``), because the last-resort 500 handler
runs outside every middleware and so outside ``SecurityHeadersMiddleware``.

Only catalogued codes leave the gateway: a ``DomainError`` whose code is not in
``cqcommon.errors.CATALOGUE`` (a service that invented one) is logged and answered as
``INTERNAL_ERROR``, so the code list in /openapi.json stays complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from cqcommon.errors import (
    BODY_TOO_LARGE,
    CATALOGUE,
    FORBIDDEN,
    IDEMPOTENCY_KEY_REUSED,
    INTERNAL_ERROR,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION_FAILED,
    DomainError,
    ErrorKind,
    ErrorSpec,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from cqgateway.metrics import note_error_code

log = logging.getLogger("cqgateway.errors")


# -- the one table ----------------------------------------------------------------------
STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.NOT_IMPLEMENTED: 501,
    ErrorKind.INTERNAL: 500,
}

# Bad-input codes whose HTTP status is more precise than the kind's 400.
STATUS_BY_CODE: dict[str, int] = {
    VALIDATION_FAILED.code: 422,
    # R-PAY-3, the IETF Idempotency-Key draft: a key reused with another request is 422.
    IDEMPOTENCY_KEY_REUSED.code: 422,
    BODY_TOO_LARGE.code: 413,
    UNSUPPORTED_MEDIA_TYPE.code: 415,
    METHOD_NOT_ALLOWED.code: 405,
}

# Starlette/FastAPI HTTPException status → our code. FastAPI raises 400 only when it
# cannot parse a body it tried to read as JSON (e.g. bytes that are not UTF-8).
_SPEC_BY_HTTP_STATUS: dict[int, ErrorSpec] = {
    400: MALFORMED_JSON,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: BODY_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: VALIDATION_FAILED,
    429: RATE_LIMITED,
    503: SERVICE_UNAVAILABLE,
}


def http_status_for(error: DomainError) -> int:
    """The HTTP status of a domain error (per-code override first, then its kind)."""
    return _status_of(error.code, error.kind)


def _status_of(code: str, kind: ErrorKind) -> int:
    # .get: a kind added to cqcommon later must not crash error handling (a unit test
    # checks that the table covers every kind).
    return STATUS_BY_CODE.get(code) or STATUS_BY_KIND.get(kind, 500)


#: OpenAPI description of the ``Retry-After`` header sent with 429 and 503 (``responses=``).
RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again (when a time is known).",
        "schema": {"type": "integer"},
    }
}


#: Sent with every response (``SecurityHeadersMiddleware``) and every error body: the body is
#: JSON and nothing else (no MIME sniffing), and no cache or proxy may keep it.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
)


def _retry_after(details: Mapping[str, Any]) -> str | None:
    value = details.get("retry_after_s")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return str(max(1, int(-(-value // 1))))  # whole seconds, rounded up


def catalogued(error: DomainError) -> DomainError:
    """``error`` if its code is in the one table, else ``INTERNAL_ERROR`` (logged).

    A code the table does not know would reach clients undocumented; it is a bug in the
    service that sent it, so it is treated like any other internal failure.
    """
    if CATALOGUE.get(error.code) is not None:
        return error
    log.error(
        "uncatalogued error code %s (kind %s) answered as INTERNAL_ERROR",
        error.code,
        error.kind.value,
    )
    return DomainError(INTERNAL_ERROR)


def error_response(error: DomainError, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """API.md's error body for ``error``, with the headers its status calls for."""
    error = catalogued(error)
    note_error_code(error.code)  # the request metrics' code label (cqgateway.metrics)
    status = http_status_for(error)
    out: dict[str, str] = dict(SECURITY_HEADERS) | dict(headers or {})
    if status == 401:
        # RFC 6750: a 401 names the scheme; invalid_token tells the client to log in again.
        out.setdefault(
            "WWW-Authenticate",
            'Bearer error="invalid_token"' if error.code == "TOKEN_INVALID" else "Bearer",
        )
    if status in (429, 503) and (retry := _retry_after(error.details)) is not None:
        out.setdefault("Retry-After", retry)
    return JSONResponse({"error": error.to_payload()}, status_code=status, headers=out)


async def send_error(send: Send, error: DomainError, *, close: bool = False) -> None:
    """Answer ``error`` straight on an ASGI ``send`` (the one raw writer of the middlewares).

    Same body, status and headers as ``error_response``; ``close`` adds
    ``Connection: close`` when the request body was not read to its end.
    """
    response = error_response(error)
    headers = list(response.raw_headers)
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": bytes(response.body)})


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors without ``input``/``ctx`` (they can echo personal data or huge bodies)."""
    fields: list[dict[str, Any]] = []
    for err in errors:
        if not isinstance(err, Mapping):
            continue
        fields.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "type": str(err.get("type", "")),
                "msg": str(err.get("msg", "")),
            }
        )
    return fields


# -- handlers ---------------------------------------------------------------------------
async def _on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if exc.kind is ErrorKind.INTERNAL:
        log.error("internal domain error: %s", exc)
    return error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(isinstance(e, Mapping) and e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        ctx = first.get("ctx") or {}
        return error_response(
            DomainError(MALFORMED_JSON, details={"reason": str(ctx.get("error", ""))})
        )
    return error_response(
        DomainError(VALIDATION_FAILED, details={"fields": _validation_details(errors)})
    )


async def _on_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    spec = _SPEC_BY_HTTP_STATUS.get(exc.status_code)
    if spec is None:
        spec = INTERNAL_ERROR if exc.status_code >= 500 else VALIDATION_FAILED
    response = error_response(DomainError(spec))
    # Keep Starlette's own status (e.g. 405 with its Allow header) rather than our kind's.
    response.status_code = exc.status_code
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The gateway's own tables (staff accounts, audit) while PostgreSQL restarts or a pooled
    # connection died with it: a retryable 503, like a backing service that is down.
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(DomainError(SERVICE_UNAVAILABLE))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Last resort: log the traceback for us, show the caller only a stable code.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(DomainError(INTERNAL_ERROR))


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler; after this no exception reaches the client unformatted."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(psycopg.OperationalError, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)


def catalogue_markdown() -> str:
    """Every stable error code with its HTTP status and messages (the OpenAPI description)."""
    lines = [
        "| code | HTTP | message (zh) | message (en) |",
        "|---|---|---|---|",
    ]
    for code in sorted(CATALOGUE):
        spec = CATALOGUE[code]
        status = _status_of(code, spec.kind)
        lines.append(f"| `{code}` | {status} | {spec.message_zh} | {spec.message_en} |")
    return "\n".join(lines)
