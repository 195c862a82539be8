"""The one table that maps domain errors to gRPC status codes, and back.

A servicer raises ``DomainError``; the server interceptor (cqcommon.grpc_server) aborts
the call with the status below and the error itself in the ``error-bin`` trailing
metadata. A client (the gateway, another service) calls ``domain_error_from_rpc`` to get
the same ``DomainError`` back, with its stable code and both messages.
"""

from __future__ import annotations

from typing import Any

import grpc

from cqcommon.errors import INTERNAL_ERROR, SERVICE_UNAVAILABLE, DomainError, ErrorKind

ERROR_METADATA_KEY = "error-bin"

STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Status codes that mean "the service could not be reached or did not answer in time".
_UNREACHABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


def status_for(error: DomainError) -> grpc.StatusCode:
    return STATUS_BY_KIND[error.kind]


def domain_error_from_rpc(error: grpc.aio.AioRpcError | grpc.RpcError) -> DomainError:
    """The ``DomainError`` a remote service raised, or a generic one for transport failures."""
    trailing: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for item in trailing or ():
        key, value = item[0], item[1]
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            return DomainError.from_bytes(value)
    code = error.code() if hasattr(error, "code") else None
    if code in _UNREACHABLE:
        return DomainError(SERVICE_UNAVAILABLE, details={"grpc_status": code.name if code else ""})
    return DomainError(INTERNAL_ERROR, details={"grpc_status": code.name if code else ""})
