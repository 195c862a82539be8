"""The gateway's request metrics: a pure ASGI middleware that counts and times every request
by route template, method, status and error code (``cqcommon.metrics``).

The route is the template the router matched (``/api/v1/violations/{violation_id}``), never
the raw path: a path holds ids, and a label per id would both leak them and grow without
bound. A request no route matched is ``<unmatched>``; one refused by a middleware before the
router ran (body too large, forbidden characters) is looked up against the routes, so it still
counts under its template.

The error code is not parsed out of the body: the one place that builds every error body
(``cqgateway.errors.error_response``) calls ``note_error_code``, which writes the code into a
per-request slot this middleware opened (a context variable: the handlers run in the
request's task, or in a copy of its context that shares the slot).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from cqcommon.metrics import HTTP_DURATION, HTTP_REQUESTS
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The labelled series by their labels: ``labels()`` validates and locks on every call, a
# dict lookup does not (all label values are bounded: templates, methods, statuses, codes).
_counters: dict[tuple[str, str, str, str], Any] = {}
_timers: dict[tuple[str, str], Any] = {}

#: one slot per request: [error code] once an error body was built, else empty
_error_slot: ContextVar[list[str] | None] = ContextVar("cqgateway_error_slot", default=None)


def note_error_code(code: str) -> None:
    """Record the error code of the answer being built (called by ``error_response``)."""
    slot = _error_slot.get()
    if slot is not None:
        slot[:] = [code]


def _templates(routes: Iterable[Any], prefix: str = "") -> Iterator[str]:
    for route in routes:
        # FastAPI keeps an included router as one entry holding the router it includes
        included = getattr(getattr(route, "include_context", None), "included_router", None)
        if included is not None:
            extra = str(getattr(route.include_context, "prefix", "") or "")
            yield from _templates(included.routes, prefix + extra)
        elif isinstance(path := getattr(route, "path", None), str):
            yield prefix + path


_patterns: WeakKeyDictionary[Any, list[tuple[re.Pattern[str], str]]] = WeakKeyDictionary()


def _route_patterns(app: Any) -> list[tuple[re.Pattern[str], str]]:
    patterns = _patterns.get(app)
    if patterns is None:
        router = getattr(app, "router", None)
        templates = list(_templates(getattr(router, "routes", ())))
        patterns = [(compile_path(t)[0], t) for t in templates]
        _patterns[app] = patterns
    return patterns


def route_template(scope: Scope) -> str:
    """The template of the route that handled (or would have handled) this request."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # not routed: refused by a middleware first, or no route has this path
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    raw = str(scope.get("path", ""))
    for pattern, template in _route_patterns(app):
        if pattern.match(raw):
            return template
    return UNMATCHED


class MetricsMiddleware:
    """Counts (``cqtraffic_http_requests_total``) and times
    (``cqtraffic_http_request_duration_seconds``) every HTTP request. Outermost, so what a
    client waits for is what is measured, the other middlewares' refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        slot: list[str] = []
        token = _error_slot.set(slot)

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            # the last-resort handler (outside every middleware) answers INTERNAL_ERROR
            status, slot[:] = 500, ["INTERNAL_ERROR"]
            raise
        finally:
            _error_slot.reset(token)
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = str(scope.get("method", ""))
            if method not in METHODS:
                method = "other"  # the method is the client's: never a label of its choosing
            code = slot[0] if slot and status >= 400 else ""
            key = (route, method, str(status), code)
            counted = _counters.get(key)
            if counted is None:
                counted = _counters[key] = HTTP_REQUESTS.labels(*key)
            timed = _timers.get(key[:2])
            if timed is None:
                timed = _timers[key[:2]] = HTTP_DURATION.labels(route, method)
            counted.inc()
            timed.observe(elapsed)
