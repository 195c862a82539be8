"""The domain error model shared by every service and the gateway.

A ``DomainError`` carries a stable UPPER_SNAKE ``code``, a message in Chinese and
in English, an ``ErrorKind`` (which decides the gRPC status and, in the gateway,
the HTTP status) and optional ``details``. Services raise them from the domain
and service layer; the gRPC interceptor turns them into a status plus trailing
metadata, and the gateway turns that back into API.md's error body.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ErrorKind(enum.Enum):
    """What kind of failure an error is; each maps to one gRPC and one HTTP status."""

    INVALID = "invalid"  # 400/422 bad input
    UNAUTHENTICATED = "unauthenticated"  # 401
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404 (also: not yours)
    CONFLICT = "conflict"  # 409
    RATE_LIMITED = "rate_limited"  # 429
    UNAVAILABLE = "unavailable"  # 503
    NOT_IMPLEMENTED = "not_implemented"  # 501: a contract method a later release fills in
    INTERNAL = "internal"  # 500


@dataclass(frozen=True)
class ErrorSpec:
    """A catalogued error: its stable code, kind and default messages."""

    code: str
    kind: ErrorKind
    message_zh: str
    message_en: str


class DomainError(Exception):
    """An expected, user-facing failure with a stable code."""

    def __init__(
        self,
        spec: ErrorSpec,
        *,
        details: Mapping[str, Any] | None = None,
        message_zh: str | None = None,
        message_en: str | None = None,
    ) -> None:
        self.spec = spec
        self.code = spec.code
        self.kind = spec.kind
        self.message_zh = message_zh or spec.message_zh
        self.message_en = message_en or spec.message_en
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"{self.code}: {self.message_en}")

    def to_payload(self) -> dict[str, Any]:
        """The API.md error body's inner object."""
        return {
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "details": self.details,
        }

    def to_bytes(self) -> bytes:
        """Serialised form carried in gRPC trailing metadata (``error-bin``)."""
        body = self.to_payload() | {"kind": self.kind.value}
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> DomainError:
        """Rebuild an error that crossed a gRPC boundary."""
        body = json.loads(raw.decode())
        spec = CATALOGUE.get(body["code"]) or ErrorSpec(
            body["code"],
            ErrorKind(body.get("kind", "internal")),
            body["message_zh"],
            body["message_en"],
        )
        return cls(
            spec,
            details=body.get("details") or {},
            message_zh=body.get("message_zh"),
            message_en=body.get("message_en"),
        )


CATALOGUE: dict[str, ErrorSpec] = {}


def define(code: str, kind: ErrorKind, message_zh: str, message_en: str) -> ErrorSpec:
    """Register a stable error code once (codes are listed in the OpenAPI description)."""
    if code in CATALOGUE:
        existing = CATALOGUE[code]
        if existing.kind is not kind:
            raise ValueError(f"error code {code} defined twice with different kinds")
        return existing
    spec = ErrorSpec(code, kind, message_zh, message_en)
    CATALOGUE[code] = spec
    return spec


# -- codes every layer uses ------------------------------------------------------------
VALIDATION_FAILED = define(
    "VALIDATION_FAILED", ErrorKind.INVALID, "请求参数不正确。", "The request is not valid."
)
MALFORMED_JSON = define(
    "MALFORMED_JSON",
    ErrorKind.INVALID,
    "请求体不是有效的 JSON。",
    "The request body is not valid JSON.",
)
BODY_TOO_LARGE = define(
    "BODY_TOO_LARGE", ErrorKind.INVALID, "请求体过大。", "The request body is too large."
)
UNSUPPORTED_MEDIA_TYPE = define(
    "UNSUPPORTED_MEDIA_TYPE",
    ErrorKind.INVALID,
    "请求的内容类型不受支持。",
    "The request content type is not supported.",
)
UNAUTHENTICATED = define(
    "UNAUTHENTICATED", ErrorKind.UNAUTHENTICATED, "请先登录。", "Authentication is required."
)
TOKEN_INVALID = define(
    "TOKEN_INVALID",
    ErrorKind.UNAUTHENTICATED,
    "登录凭证无效或已过期，请重新登录。",
    "The token is invalid or has expired; please log in again.",
)
FORBIDDEN = define(
    "FORBIDDEN", ErrorKind.FORBIDDEN, "您无权执行此操作。", "You are not allowed to do this."
)
NOT_FOUND = define("NOT_FOUND", ErrorKind.NOT_FOUND, "未找到相关记录。", "No such record.")
INVALID_CURSOR = define(
    "INVALID_CURSOR", ErrorKind.INVALID, "分页游标无效。", "The page cursor is not valid."
)
RATE_LIMITED = define(
    "RATE_LIMITED",
    ErrorKind.RATE_LIMITED,
    "操作过于频繁，请稍后再试。",
    "Too many requests; try again later.",
)
SERVICE_UNAVAILABLE = define(
    "SERVICE_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "服务暂时不可用，请稍后再试。",
    "The service is temporarily unavailable; try again later.",
)
NOT_IMPLEMENTED = define(
    "NOT_IMPLEMENTED",
    ErrorKind.NOT_IMPLEMENTED,
    "该功能尚未开放。",
    "This function is not available yet.",
)
INTERNAL_ERROR = define(
    "INTERNAL_ERROR",
    ErrorKind.INTERNAL,
    "系统内部错误，请稍后再试。",
    "Internal error; try again later.",
)
