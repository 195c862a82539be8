"""Signed, expiring bearer tokens for mini-program users and counter staff (HS256 JWT).

Two token types share one secret but never one audience: user tokens carry
``aud=cqtraffic-api`` and are accepted only on ``/api/v1``, staff tokens carry
``aud=cqtraffic-counter`` and are accepted only on ``/internal/v1``, so a leaked user token
cannot open the counter API and a staff token cannot act as a citizen. Both carry
``iss=cqtraffic-gateway``; a token without the right issuer and audience is refused.

A staff token's ``role`` says what the role was at login; the gateway honours it only while
the account exists and is active, with the account's *current* role
(``cqgateway.staff.StaffAccountCache``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from cqcommon.errors import TOKEN_INVALID, DomainError

ALGORITHM = "HS256"
ISSUER = "cqtraffic-gateway"
USER_AUDIENCE = "cqtraffic-api"
STAFF_AUDIENCE = "cqtraffic-counter"
TokenType = Literal["user", "staff"]
StaffRole = Literal["clerk", "supervisor"]
STAFF_ROLES: tuple[StaffRole, ...] = ("clerk", "supervisor")
_AUDIENCE: dict[TokenType, str] = {"user": USER_AUDIENCE, "staff": STAFF_AUDIENCE}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class UserClaims:
    """A verified user token: the Alipay user and the registry person (may be empty)."""

    user_id: str
    person_id: str
    jti: str


@dataclass(frozen=True)
class StaffClaims:
    """A verified staff token."""

    staff_id: str
    role: StaffRole
    jti: str


class TokenCodec:
    """Issues and verifies tokens with one secret and the configured lifetimes."""

    def __init__(
        self, secret: str, *, user_ttl_s: int, staff_ttl_s: int, previous_secret: str = ""
    ) -> None:
        if not secret:
            raise ValueError("token secret must not be empty")
        self._secret = secret
        # during a rotation, tokens signed with the old secret stay valid until they expire
        self._verify_secrets = [secret] + ([previous_secret] if previous_secret else [])
        self._user_ttl = timedelta(seconds=user_ttl_s)
        self._staff_ttl = timedelta(seconds=staff_ttl_s)

    def _encode(
        self, typ: TokenType, claims: dict[str, Any], ttl: timedelta, now: datetime | None
    ) -> IssuedToken:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + ttl
        payload = claims | {
            "typ": typ,
            "iss": ISSUER,
            "aud": _AUDIENCE[typ],
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_urlsafe(16),
        }
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires)

    def issue_user(
        self, user_id: str, person_id: str, *, now: datetime | None = None
    ) -> IssuedToken:
        return self._encode("user", {"sub": user_id, "pid": person_id}, self._user_ttl, now)

    def issue_staff(
        self, staff_id: str, role: StaffRole, *, now: datetime | None = None
    ) -> IssuedToken:
        return self._encode("staff", {"sub": staff_id, "role": role}, self._staff_ttl, now)

    def _verified(self, token: str, typ: TokenType) -> dict[str, Any]:
        """The claims under the current secret, else under the previous one (a rotation)."""
        for i, secret in enumerate(self._verify_secrets):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],  # pinned: never let the token choose (alg=none)
                    audience=_AUDIENCE[typ],
                    issuer=ISSUER,
                    options={"require": ["sub", "typ", "iss", "aud", "iat", "exp", "jti"]},
                )
                return claims
            except jwt.InvalidSignatureError:
                if i == len(self._verify_secrets) - 1:
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def _decode(self, token: str, typ: TokenType) -> dict[str, Any]:
        try:
            claims = self._verified(token, typ)
        except jwt.ExpiredSignatureError as exc:
            raise DomainError(TOKEN_INVALID, details={"reason": "expired"}) from exc
        except jwt.InvalidAudienceError as exc:
            # The audience is the token type: a staff token on the user API and vice versa.
            raise DomainError(TOKEN_INVALID, details={"reason": "wrong_token_type"}) from exc
        except jwt.InvalidTokenError as exc:
            raise DomainError(TOKEN_INVALID, details={"reason": "invalid"}) from exc
        if claims.get("typ") != typ:
            raise DomainError(TOKEN_INVALID, details={"reason": "wrong_token_type"})
        return claims

    def verify_user(self, token: str) -> UserClaims:
        claims = self._decode(token, "user")
        pid = claims.get("pid", "")
        if not isinstance(pid, str):
            raise DomainError(TOKEN_INVALID, details={"reason": "invalid"})
        return UserClaims(user_id=str(claims["sub"]), person_id=pid, jti=str(claims["jti"]))

    def verify_staff(self, token: str) -> StaffClaims:
        claims = self._decode(token, "staff")
        role = claims.get("role")
        if role == "clerk":
            return StaffClaims(str(claims["sub"]), "clerk", str(claims["jti"]))
        if role == "supervisor":
            return StaffClaims(str(claims["sub"]), "supervisor", str(claims["jti"]))
        raise DomainError(TOKEN_INVALID, details={"reason": "invalid"})
