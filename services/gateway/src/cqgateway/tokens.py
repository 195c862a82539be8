"""Signed, expiring bearer tokens for mini-program users and counter staff (HS256 JWT).

Two token types share one secret but never one audience: user tokens carry
``aud=cqtraffic-api`` and are accepted only on ``/api/v1``, staff tokens carry
``aud=cqtraffic-counter`` and are accepted only on ``/internal/v1``, so a leaked user token
cannot open the counter API and a staff token cannot act as a citizen. Both carry
``iss=cqtraffic-gateway``; a token without the right issuer and audience is refused.

A staff token's ``role`` says what the role was at login; the gateway honours it only while
the account exists and is active, with the account's *current* role
(``cqgateway.staff.StaffAccountCache``).

Verifying an HS256 token (base64, JSON, HMAC, claim checks) was about a seventh of the
gateway's CPU in the handling benchmark, and a client sends the same token on every request.
So a token that verified is remembered, by its exact text and type, until its ``exp``
(``VerifiedTokenCache``): the same text under the same secrets verifies the same way until
then, and ``exp`` is the only claim whose verdict changes with time (``iat`` only recedes).
A token that failed is never remembered, and an expired one is verified afresh (and refused
as expired). There is no revocation list to consult; the staff account check runs on every
request after this (``StaffAccountCache``).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from cqcommon.clock import Clock, SystemClock
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


Claims = UserClaims | StaffClaims

#: Verified tokens remembered per gateway process (a few hundred bytes each).
VERIFIED_CACHE_SIZE = 4096


class VerifiedTokenCache:
    """Tokens that verified, with their claims, until their ``exp``; least recently used
    first out once ``size`` are held."""

    def __init__(self, size: int = VERIFIED_CACHE_SIZE, clock: Clock | None = None) -> None:
        self._size = size
        self._clock = clock or SystemClock()
        self._entries: OrderedDict[tuple[TokenType, str], tuple[Claims, int]] = OrderedDict()

    def get(self, typ: TokenType, token: str) -> Claims | None:
        key = (typ, token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        claims, exp = entry
        if exp <= self._clock.now().timestamp():  # PyJWT's own test: expired once exp <= now
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return claims

    def put(self, typ: TokenType, token: str, claims: Claims, exp: int) -> None:
        key = (typ, token)
        self._entries[key] = (claims, exp)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenCodec:
    """Issues and verifies tokens with one secret and the configured lifetimes."""

    def __init__(
        self,
        secret: str,
        *,
        user_ttl_s: int,
        staff_ttl_s: int,
        previous_secret: str = "",
        verified: VerifiedTokenCache | None = None,
    ) -> None:
        if not secret:
            raise ValueError("token secret must not be empty")
        self._secret = secret
        # during a rotation, tokens signed with the old secret stay valid until they expire
        self._verify_secrets = [secret] + ([previous_secret] if previous_secret else [])
        self._user_ttl = timedelta(seconds=user_ttl_s)
        self._staff_ttl = timedelta(seconds=staff_ttl_s)
        # per codec: its secrets are fixed, so what verified under them stays verified
        self._verified_cache = verified if verified is not None else VerifiedTokenCache()

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
        cached = self._verified_cache.get("user", token)
        if isinstance(cached, UserClaims):
            return cached
        claims = self._decode(token, "user")
        pid = claims.get("pid", "")
        if not isinstance(pid, str):
            raise DomainError(TOKEN_INVALID, details={"reason": "invalid"})
        user = UserClaims(user_id=str(claims["sub"]), person_id=pid, jti=str(claims["jti"]))
        self._verified_cache.put("user", token, user, int(claims["exp"]))
        return user

    def verify_staff(self, token: str) -> StaffClaims:
        cached = self._verified_cache.get("staff", token)
        if isinstance(cached, StaffClaims):
            return cached
        claims = self._decode(token, "staff")
        role = claims.get("role")
        if role == "clerk":
            staff = StaffClaims(str(claims["sub"]), "clerk", str(claims["jti"]))
        elif role == "supervisor":
            staff = StaffClaims(str(claims["sub"]), "supervisor", str(claims["jti"]))
        else:
            raise DomainError(TOKEN_INVALID, details={"reason": "invalid"})
        self._verified_cache.put("staff", token, staff, int(claims["exp"]))
        return staff
