"""/openapi.json tells the truth: every operation documents every error status it can answer.

The error answers of a route follow from what it is made of, so they are derived, not
written by hand per route:

* every operation: 400 ``INVALID_CHARACTERS`` (the URL check runs on every request) and
  500 ``INTERNAL_ERROR``;
* a token dependency (``deps.AUTH_DEPENDENCIES``): 401 ``UNAUTHENTICATED``, ``TOKEN_INVALID``;
  a role check (``deps.RoleCheck``): 403 ``FORBIDDEN``;
* a request body: 400 ``MALFORMED_JSON``, 413 ``BODY_TOO_LARGE``, 422; ``JsonBody``: 415;
* any parameter: 422 ``VALIDATION_FAILED``; a path parameter: 404 ``NOT_FOUND``;
* ``/api/v1`` and ``/internal/v1``: 503 ``SERVICE_UNAVAILABLE`` (starting, a service down);
  ``/internal/v1`` also ``AUDIT_UNAVAILABLE``;
* plus the codes a route names with ``openapi_extra=error_codes(...)``: what its service
  call or its own checks answer (identifier codes, ``INVALID_CURSOR``, 404, 409, 429, 501).

Each code's status is ``errors.http_status_for``'s, so the document and the answers come
from the one table. Every error response's schema is ``ErrorOut`` (API.md's envelope),
422 included: FastAPI's ``HTTPValidationError`` never leaves the gateway and is removed from
the components. The codes of an operation are listed in its ``x-error-codes``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, cast

from cqcommon.errors import (
    AUDIT_UNAVAILABLE,
    BODY_TOO_LARGE,
    CATALOGUE,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_CHARACTERS,
    MALFORMED_JSON,
    NOT_FOUND,
    NOT_IMPLEMENTED,
    SERVICE_UNAVAILABLE,
    TOKEN_INVALID,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION_FAILED,
    DomainError,
    ErrorSpec,
)
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cqgateway.deps import AUTH_DEPENDENCIES, RoleCheck, require_json
from cqgateway.errors import RETRY_AFTER_HEADER, http_status_for
from cqgateway.schemas import ErrorOut

X_ERROR_CODES = "x-error-codes"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_STATUS_TEXT: dict[int, str] = {
    400: "Bad input",
    401: "No token, or a bad one",
    403: "Authenticated but not allowed",
    404: "Not found, or not yours",
    409: "State conflict",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Request does not match the schema (or reuses an Idempotency-Key)",
    429: "Rate limit or quota reached",
    500: "Internal error",
    501: "Not built yet",
    503: "A backing service is starting or down",
}

_WWW_AUTHENTICATE_HEADER: dict[str, Any] = {
    "WWW-Authenticate": {
        "description": '`Bearer`, or `Bearer error="invalid_token"` for a bad token.',
        "schema": {"type": "string"},
    }
}


class RouteView(Protocol):
    """What is read of a route: FastAPI's effective view of an ``APIRoute`` (router prefix
    and router dependencies applied), as ``fastapi.routing.iter_route_contexts`` yields it."""

    @property
    def path_format(self) -> str | None: ...
    @property
    def methods(self) -> set[str] | None: ...
    @property
    def dependant(self) -> Dependant: ...
    @property
    def body_field(self) -> object | None: ...
    @property
    def responses(self) -> Mapping[int | str, Any]: ...
    @property
    def include_in_schema(self) -> bool: ...


def api_routes(app: FastAPI) -> list[RouteView]:
    """Every API route of ``app`` as OpenAPI sees it (included routers resolved)."""
    return [
        cast("RouteView", context)
        for context in routing.iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def error_codes(*specs: ErrorSpec) -> dict[str, Any]:
    """``openapi_extra`` of a route: the codes it answers beyond what its parts imply."""
    return {X_ERROR_CODES: [spec.code for spec in specs]}


def _dependency_calls(dependant: Dependant) -> list[Any]:
    calls: list[Any] = []
    stack = list(dependant.dependencies)
    while stack:
        sub = stack.pop()
        calls.append(sub.call)
        stack.extend(sub.dependencies)
    return calls


def _has_parameters(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params:
        return True
    return any(_has_parameters(sub) for sub in dependant.dependencies)


def implied_codes(route: RouteView) -> list[ErrorSpec]:
    """The error codes a route answers because of its parts (see the module docstring)."""
    specs = [INVALID_CHARACTERS, INTERNAL_ERROR]
    calls = _dependency_calls(route.dependant)
    if any(call in AUTH_DEPENDENCIES for call in calls):
        specs += [UNAUTHENTICATED, TOKEN_INVALID]
    if any(isinstance(call, RoleCheck) for call in calls):
        specs.append(FORBIDDEN)
    if route.body_field is not None:
        specs += [MALFORMED_JSON, BODY_TOO_LARGE, VALIDATION_FAILED]
    if require_json in calls:
        specs.append(UNSUPPORTED_MEDIA_TYPE)
    if _has_parameters(route.dependant):
        specs.append(VALIDATION_FAILED)
    if route.dependant.path_params:
        specs.append(NOT_FOUND)  # also: a path the router does not know
    path = route.path_format or ""
    if path.startswith(("/api/", "/internal/")):
        specs.append(SERVICE_UNAVAILABLE)
    if path.startswith("/internal/"):
        specs.append(AUDIT_UNAVAILABLE)
    return specs


def _error_response(status: int, codes: Iterable[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in sorted(codes))
    response: dict[str, Any] = {
        "description": f"{_STATUS_TEXT.get(status, 'Error')}: {listed}.",
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    if status == 401:
        response["headers"] = _WWW_AUTHENTICATE_HEADER
    if status in (429, 503):
        response["headers"] = RETRY_AFTER_HEADER
    return response


def _declared_statuses(route: RouteView) -> set[str]:
    """Statuses the route documents itself with another body (e.g. /readyz's 503)."""
    return {str(status) for status in route.responses}


def document_errors(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Add every error answer to every operation of ``schema`` (built from ``app``)."""
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        path_item = schema.get("paths", {}).get(route.path_format or "", {})
        for method in route.methods or ():
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            declared = [CATALOGUE[code] for code in operation.get(X_ERROR_CODES, [])]
            codes: dict[str, ErrorSpec] = {
                spec.code: spec for spec in [*implied_codes(route), *declared]
            }
            by_status: dict[int, list[str]] = defaultdict(list)
            for spec in codes.values():
                by_status[http_status_for(DomainError(spec))].append(spec.code)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            keep = _declared_statuses(route)
            for status, status_codes in sorted(by_status.items()):
                if str(status) not in keep:
                    responses[str(status)] = _error_response(status, status_codes)
            if NOT_IMPLEMENTED.code in codes:
                # Not built yet: the success answer is the contract's (see the description),
                # not something this release sends.
                for success in [key for key in responses if key.startswith("2")]:
                    del responses[success]
            operation["responses"] = dict(sorted(responses.items()))
            operation[X_ERROR_CODES] = sorted(codes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorOut"] = error_schema
    return schema
