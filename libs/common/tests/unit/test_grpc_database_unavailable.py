"""The domain-error interceptor answers a lost database as UNAVAILABLE, not INTERNAL.

Found by the PostgreSQL-restart fault drill (bench/drills): requests whose pooled
connection died with the server reached the gateway as INTERNAL and were answered 500;
a restart must answer 503 ``SERVICE_UNAVAILABLE``, which a client may retry.
"""

from __future__ import annotations

from typing import Any

import grpc
import psycopg
import pytest
from cqcommon.errors import INTERNAL_ERROR, SERVICE_UNAVAILABLE, DomainError
from cqcommon.grpc_errors import ERROR_METADATA_KEY
from cqcommon.grpc_server import DomainErrorInterceptor


class _AbortedError(Exception):
    pass


class _Context:
    """What the interceptor uses of a servicer context: trailing metadata and abort."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.error: DomainError | None = None

    def set_trailing_metadata(self, metadata: tuple[tuple[str, bytes], ...]) -> None:
        for key, value in metadata:
            if key == ERROR_METADATA_KEY:
                self.error = DomainError.from_bytes(value)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        raise _AbortedError(details)


async def _answer(exc: Exception) -> _Context:
    async def method(request: Any, context: Any) -> Any:
        raise exc

    async def continuation(details: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(method)

    details: Any = type("Details", (), {"method": "/svc/Method"})()
    handler = await DomainErrorInterceptor().intercept_service(continuation, details)
    context = _Context()
    with pytest.raises(_AbortedError):
        await handler.unary_unary(object(), context)
    return context


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("the connection is lost"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    ],
)
async def test_a_lost_database_answers_unavailable(exc: Exception) -> None:
    context = await _answer(exc)
    assert context.code == grpc.StatusCode.UNAVAILABLE
    assert context.error is not None and context.error.code == SERVICE_UNAVAILABLE.code


async def test_any_other_error_still_answers_internal() -> None:
    context = await _answer(RuntimeError("a bug"))
    assert context.code == grpc.StatusCode.INTERNAL
    assert context.error is not None and context.error.code == INTERNAL_ERROR.code
