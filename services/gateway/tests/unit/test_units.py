"""Pure units of the gateway: tokens, the error table, passwords, the sandbox login adapter,
the proto → JSON mappers and the Kafka probe cache (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cqcommon.clock import FixedClock
from cqcommon.errors import CATALOGUE, DomainError, ErrorKind
from cqgateway import mappers
from cqgateway.alipay_oauth import SandboxAlipayOAuth
from cqgateway.errors import STATUS_BY_KIND, error_response, http_status_for
from cqgateway.health import CheckResult, KafkaProbe
from cqgateway.schemas import RecordViolationBody
from cqgateway.staff import hash_password, verify_password
from cqgateway.tokens import USER_AUDIENCE, TokenCodec, VerifiedTokenCache
from cqtraffic.common.v1 import types_pb2 as common

SECRET = "unit-test-secret-0123456789abcdef-0123456789"


def codec(user_ttl_s: int = 60) -> TokenCodec:
    return TokenCodec(SECRET, user_ttl_s=user_ttl_s, staff_ttl_s=120)


def test_user_token_round_trip_and_claims() -> None:
    issued = codec().issue_user("2088000000000001", "p-9")
    claims = codec().verify_user(issued.token)
    assert (claims.user_id, claims.person_id) == ("2088000000000001", "p-9")
    raw = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience=USER_AUDIENCE)
    assert raw["typ"] == "user" and raw["exp"] - raw["iat"] == 60 and raw["jti"]
    assert issued.expires_at == datetime.fromtimestamp(raw["exp"], UTC)


def test_expired_token_is_token_invalid() -> None:
    issued = codec().issue_user("u", "", now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(DomainError) as info:
        codec().verify_user(issued.token)
    assert info.value.code == "TOKEN_INVALID" and info.value.details["reason"] == "expired"


def test_token_types_do_not_cross() -> None:
    staff = codec().issue_staff("clerk01", "clerk")
    user = codec().issue_user("u", "p")
    with pytest.raises(DomainError):
        codec().verify_user(staff.token)
    with pytest.raises(DomainError):
        codec().verify_staff(user.token)
    assert codec().verify_staff(staff.token).role == "clerk"


def test_other_secret_is_refused() -> None:
    other = TokenCodec("x" * 48, user_ttl_s=60, staff_ttl_s=60).issue_user("u", "p")
    with pytest.raises(DomainError) as info:
        codec().verify_user(other.token)
    assert info.value.details["reason"] == "invalid"


def test_rotation_accepts_tokens_of_the_previous_secret_and_signs_with_the_new() -> None:
    old = codec()
    rotated = TokenCodec("n" * 48, user_ttl_s=60, staff_ttl_s=60, previous_secret=SECRET)
    issued_before = old.issue_user("u", "p")
    assert rotated.verify_user(issued_before.token).user_id == "u"
    issued_after = rotated.issue_user("u2", "p2")
    with pytest.raises(DomainError):  # signed with the new secret, unknown to the old
        old.verify_user(issued_after.token)
    # once the previous secret is cleared, its tokens are refused
    done = TokenCodec("n" * 48, user_ttl_s=60, staff_ttl_s=60)
    with pytest.raises(DomainError) as info:
        done.verify_user(issued_before.token)
    assert info.value.details["reason"] == "invalid"


def test_rotation_keeps_expiry_and_audience_checks_for_old_tokens() -> None:
    rotated = TokenCodec("n" * 48, user_ttl_s=60, staff_ttl_s=60, previous_secret=SECRET)
    staff = codec().issue_staff("s1", "clerk")
    with pytest.raises(DomainError) as info:
        rotated.verify_user(staff.token)
    assert info.value.details["reason"] == "wrong_token_type"
    expired = codec(user_ttl_s=-10).issue_user("u", "p")
    with pytest.raises(DomainError) as info:
        rotated.verify_user(expired.token)
    assert info.value.details["reason"] == "expired"


def counting(tokens: TokenCodec) -> list[str]:
    """Every full verification (signature and claims) ``tokens`` does from now on."""
    calls: list[str] = []
    decode = tokens._decode

    def spy(token: str, typ: str) -> dict[str, object]:
        calls.append(typ)
        return decode(token, typ)  # type: ignore[arg-type]

    tokens._decode = spy  # type: ignore[method-assign]
    return calls


class FrozenDatetime(datetime):
    """``datetime`` whose ``now`` is a fixed instant (PyJWT reads the time through it)."""

    frozen: float = 0.0

    @classmethod
    def at(cls, ts: float) -> type[FrozenDatetime]:
        return type("Frozen", (cls,), {"frozen": ts})

    @classmethod
    def now(cls, tz: object = None) -> FrozenDatetime:
        return cls.fromtimestamp(cls.frozen, UTC)


def test_a_verified_token_is_remembered_until_its_exp_and_verified_afresh_after() -> None:
    clock = FixedClock(datetime.now(UTC))
    tokens = TokenCodec(
        SECRET, user_ttl_s=60, staff_ttl_s=60, verified=VerifiedTokenCache(clock=clock)
    )
    issued = tokens.issue_user("u", "p")
    calls = counting(tokens)
    first = tokens.verify_user(issued.token)
    assert tokens.verify_user(issued.token) == first and calls == ["user"]
    clock.at = issued.expires_at - timedelta(seconds=1)
    assert tokens.verify_user(issued.token) == first and calls == ["user"]
    clock.at = issued.expires_at  # exp <= now: expired, as PyJWT counts it
    tokens.verify_user(issued.token)  # PyJWT's clock is the real one: still valid there
    assert calls == ["user", "user"]


def test_an_expired_token_is_refused_though_it_verified_before() -> None:
    clock = FixedClock(datetime.now(UTC))
    tokens = TokenCodec(
        SECRET, user_ttl_s=60, staff_ttl_s=60, verified=VerifiedTokenCache(clock=clock)
    )
    issued = tokens.issue_user("u", "p")
    tokens.verify_user(issued.token)
    clock.at = issued.expires_at + timedelta(seconds=1)
    real = tokens._decode

    def pyjwt_at_clock(token: str, typ: str) -> dict[str, object]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(jwt.api_jwt, "datetime", FrozenDatetime.at(clock.at.timestamp()))
            return real(token, typ)  # type: ignore[arg-type]

    tokens._decode = pyjwt_at_clock  # type: ignore[method-assign]
    with pytest.raises(DomainError) as info:
        tokens.verify_user(issued.token)
    assert info.value.details["reason"] == "expired"


def test_failed_and_tampered_tokens_are_never_remembered() -> None:
    tokens = codec()
    issued = tokens.issue_user("u", "p")
    tokens.verify_user(issued.token)
    header, payload, signature = issued.token.split(".")
    tampered = ".".join(
        (header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"))
    )
    calls = counting(tokens)
    for _ in range(2):
        with pytest.raises(DomainError) as info:
            tokens.verify_user(tampered)
        assert info.value.details["reason"] == "invalid"
    assert calls == ["user", "user"]
    assert len(tokens._verified_cache) == 1  # only the good one


def test_a_remembered_token_keeps_its_type() -> None:
    tokens = codec()
    staff = tokens.issue_staff("clerk01", "clerk")
    user = tokens.issue_user("u", "p")
    assert tokens.verify_staff(staff.token).role == "clerk"
    assert tokens.verify_user(user.token).user_id == "u"
    with pytest.raises(DomainError) as info:
        tokens.verify_user(staff.token)
    assert info.value.details["reason"] == "wrong_token_type"
    with pytest.raises(DomainError):
        tokens.verify_staff(user.token)


def test_the_verified_cache_is_bounded_least_recently_used_first_out() -> None:
    clock = FixedClock(datetime.now(UTC))
    cache = VerifiedTokenCache(size=2, clock=clock)
    exp = int(clock.at.timestamp()) + 60
    claims = codec().verify_user(codec().issue_user("u", "p").token)
    cache.put("user", "a", claims, exp)
    cache.put("user", "b", claims, exp)
    assert cache.get("user", "a") is claims  # a is now the most recent
    cache.put("user", "c", claims, exp)
    assert len(cache) == 2 and cache.get("user", "b") is None
    assert cache.get("user", "a") is claims and cache.get("user", "c") is claims


def test_every_error_kind_has_an_http_status() -> None:
    assert set(STATUS_BY_KIND) == set(ErrorKind)
    for spec in CATALOGUE.values():
        assert 400 <= http_status_for(DomainError(spec)) <= 599


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    spec = CATALOGUE["RATE_LIMITED"]
    assert (
        error_response(DomainError(spec, details={"retry_after_s": 2.1})).headers["retry-after"]
        == "3"
    )
    assert "retry-after" not in error_response(DomainError(spec)).headers
    assert (
        "retry-after"
        not in error_response(DomainError(spec, details={"retry_after_s": "x"})).headers
    )


def test_password_hash_is_salted_and_verifies() -> None:
    a, b = hash_password("sandbox"), hash_password("sandbox")
    assert a != b
    assert verify_password("sandbox", a) and verify_password("sandbox", b)
    assert not verify_password("Sandbox", a)
    assert not verify_password("sandbox", "garbage")


async def test_sandbox_oauth_accepts_only_sandbox_codes() -> None:
    oauth = SandboxAlipayOAuth()
    assert await oauth.exchange("sandbox:2088000000000005") == "2088000000000005"
    for bad in ("sandbox:208800000000000", "sandbox:2088000000000005 ", "2088000000000005", ""):
        with pytest.raises(DomainError) as info:
            await oauth.exchange(bad)
        assert info.value.code == "AUTH_CODE_INVALID"


def test_record_request_normalises_identifiers() -> None:
    body = RecordViolationBody.model_validate(
        {
            "source_system": "cam",
            "source_record_id": "r1",
            "plate_type": "52",
            "plate_number": "渝ad12345",
            "licence_no": "11010519491231002x",
            "violation_code": "1039",
            "occurred_at": "2025-01-01T00:00:00+08:00",
            "place": "p",
            "fine_fen": 100,
            "source": "on_site",
            "procedure": "general",
            "decision_no": "5001031234567890",
            "decision_date": "2025-01-02",
        }
    )
    req = mappers.record_violation_request(body, common.Caller(staff_id="s", staff_role="clerk"))
    assert req.plate_number == "渝AD12345" and req.plate_type == common.PLATE_TYPE_SMALL_NEV
    assert req.licence_no == "11010519491231002X"
    assert (
        req.source == common.VIOLATION_SOURCE_ON_SITE and req.procedure == common.PROCEDURE_GENERAL
    )
    assert (req.decision_date.year, req.decision_date.month, req.decision_date.day) == (2025, 1, 2)
    assert req.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)


def test_unknown_eligibility_maps_to_allowed_null() -> None:
    out = mappers.online_handling_out(
        common.OnlineHandling(
            availability=common.OnlineHandling.AVAILABILITY_UNKNOWN, reason_code="X"
        )
    )
    assert out is not None and out.allowed is None and out.availability == "unknown"


async def test_kafka_probe_result_is_cached() -> None:
    calls: list[str] = []

    def probe(bootstrap: str, _timeout: float) -> CheckResult:
        calls.append(bootstrap)
        return CheckResult(True)

    kafka = KafkaProbe("b:9092", cache_s=60, probe=probe)
    assert (await kafka.check()).ok and (await kafka.check()).ok
    assert calls == ["b:9092"]
    fresh = KafkaProbe("b:9092", cache_s=0, probe=probe)
    await fresh.check()
    await fresh.check()
    assert len(calls) == 3
