"""The SMS adapters' pure parts, without I/O: code generation, the local day, endpoint
parsing, provider codes, the adapter choice, and the fake's signature check agreeing with
the SDK's own signer."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.settings import Settings
from cqcommon.sms.aliyun import AliyunSmsSender, _provider_code, split_endpoint
from cqcommon.sms.recording import RecordingSmsSender
from cqcommon.sms.senders import sandbox_outbox_for, sms_sender_for
from cqdev.fake_sms import canonical_request, sign_v3
from cqfollow.adapters.redis_sms_codes import RedisSmsCodes, new_code, seconds_to_local_midnight
from cqfollow.adapters.sms_senders import sms_codes_for
from cqfollow.ports import SmsCodes
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from darabonba.request import DaraRequest


@pytest.fixture
def redis() -> aioredis.Redis:
    # from_url connects lazily: nothing here talks to a server
    return aioredis.Redis.from_url("redis://127.0.0.1:1/0")


def test_r_sms_1_codes_are_six_uniform_digits_with_leading_zeros_kept() -> None:
    codes = [new_code() for _ in range(20_000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    first_digits = Counter(c[0] for c in codes)
    assert set(first_digits) == set("0123456789")  # "0" leads a tenth of them
    assert all(1_700 < n < 2_300 for n in first_digits.values())
    assert len(set(codes)) > 19_000


@pytest.mark.parametrize(
    ("at", "seconds"),
    [
        (datetime(2026, 3, 2, 23, 59, 59, tzinfo=SHANGHAI), 1),
        (datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI), 86_400),
        (datetime(2026, 3, 2, 10, 10, 10, tzinfo=SHANGHAI), 13 * 3600 + 49 * 60 + 50),
        # 16:00 UTC is midnight in Chongqing: a full local day ahead
        (datetime(2026, 3, 2, 16, 0, tzinfo=UTC), 86_400),
        (datetime(2026, 3, 2, 15, 59, 59, 500_000, tzinfo=UTC), 1),
    ],
)
def test_r_sms_2_the_lock_lasts_until_asia_shanghai_midnight(at: datetime, seconds: int) -> None:
    assert seconds_to_local_midnight(at) == seconds


def test_codes_keys_are_bound_to_the_secret_and_never_hold_the_phone(redis: aioredis.Redis) -> None:
    clock = FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    args = {"code_ttl_s": 300, "resend_interval_s": 60, "max_wrong": 5, "daily_limit": 10}
    one = RedisSmsCodes(redis, secret="a", clock=clock, **args)  # type: ignore[arg-type]
    two = RedisSmsCodes(redis, secret="b", clock=clock, **args)  # type: ignore[arg-type]
    phone = "13900000005"
    assert phone not in one._cooldown_key(phone)
    assert one._cooldown_key(phone) != two._cooldown_key(phone)
    assert one._code_digest("req-1", "123456") != one._code_digest("req-2", "123456")
    assert one._code_digest("req-1", "123456") != two._code_digest("req-1", "123456")
    # no (purpose, code) pair can be shifted into another
    assert one._code_digest("req-1", "123456") != one._code_digest("req-11", "23456")


@pytest.mark.parametrize(
    "bad",
    [
        {"secret": ""},
        {"code_ttl_s": 0},
        {"resend_interval_s": 0},
        {"max_wrong": 0},
        {"daily_limit": 0},
    ],
)
def test_codes_refuse_settings_that_disable_a_rule(
    redis: aioredis.Redis, bad: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "secret": "s",
        "code_ttl_s": 300,
        "resend_interval_s": 60,
        "max_wrong": 5,
        "daily_limit": 10,
        "clock": FixedClock(datetime(2026, 3, 2, tzinfo=UTC)),
    }
    with pytest.raises(ValueError):
        RedisSmsCodes(redis, **{**args, **bad})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("dysmsapi.aliyuncs.com", ("https", "dysmsapi.aliyuncs.com")),
        ("https://dysmsapi.aliyuncs.com/", ("https", "dysmsapi.aliyuncs.com")),
        ("http://127.0.0.1:8123", ("http", "127.0.0.1:8123")),
    ],
)
def test_the_endpoint_setting_is_a_host_or_a_url(endpoint: str, expected: tuple[str, str]) -> None:
    assert split_endpoint(endpoint) == expected


def test_an_endpoint_with_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError):
        split_endpoint("ftp://example")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"access_key_id": "", "access_key_secret": "s", "sign_name": "n"},
        {"access_key_id": "id", "access_key_secret": "", "sign_name": "n"},
        {"access_key_id": "id", "access_key_secret": "s", "sign_name": ""},
        {"access_key_id": "id", "access_key_secret": "s", "sign_name": "n", "timeout_s": 0},
    ],
)
def test_the_aliyun_sender_needs_keys_a_signature_and_a_deadline(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AliyunSmsSender(**kwargs)  # type: ignore[arg-type]


def test_provider_codes_never_carry_the_sdk_message() -> None:
    refused = ClientException(
        code="SignatureDoesNotMatch", message="server string to sign is: ...code=123456..."
    )
    assert _provider_code(refused) == "SignatureDoesNotMatch"
    down = UnretryableException(
        RetryPolicyContext(retries_attempted=1, exception=RetryError("refused 13900000005"))
    )
    assert _provider_code(down) == "RetryError"
    # a "code" that is really text is not passed on
    assert _provider_code(ClientException(code="bad code 123456", message="")) == "ClientException"


def test_recording_outside_the_sandbox_warns(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cqcommon.sms.senders")
    sandbox = Settings(sms_provider="recording", sandbox_mode=True)
    assert isinstance(sms_sender_for(sandbox, redis), RecordingSmsSender)
    assert not caplog.records
    production = Settings(sms_provider="recording", sandbox_mode=False)
    assert isinstance(sms_sender_for(production, redis), RecordingSmsSender)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert sandbox_outbox_for(production, redis) is None
    assert isinstance(sandbox_outbox_for(sandbox, redis), RecordingSmsSender)


def test_aliyun_without_keys_fails_at_start(redis: aioredis.Redis) -> None:
    with pytest.raises(ValueError):
        sms_sender_for(Settings(sms_provider="aliyun", aliyun_access_key_id=""), redis)


def test_sms_codes_for_takes_the_rule_settings(redis: aioredis.Redis) -> None:
    clock = FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    codes = sms_codes_for(Settings(sms_max_wrong_entries=3, sms_daily_limit=4), redis, clock)
    port: SmsCodes = codes  # mypy checks the adapter against the port
    assert port is codes
    assert (codes._max_wrong, codes._daily_limit) == (3, 4)
    assert (codes._code_ttl_ms, codes._interval_ms) == (300_000, 60_000)


def test_the_fakes_signature_check_agrees_with_the_sdk_signer() -> None:
    """The fake recomputes the canonical request from what it receives; here it must
    arrive at the SDK's own Authorization for the same request (spaces, '~', '+', Chinese)."""
    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.query = {
        "TemplateParam": '{"code":"012345"}',
        "SignName": "重庆交警",
        "PhoneNumbers": "13900000005",
        "TemplateCode": "SMS_000000000",
        "Odd": "a b~c+d/e",
    }
    request.headers = {
        "host": "127.0.0.1:8123",
        "x-acs-version": "2017-05-25",
        "x-acs-action": "SendSms",
        "user-agent": "AlibabaCloud (Linux) Python/3.11",
        "x-acs-date": "2026-03-02T02:00:00Z",
        "x-acs-signature-nonce": "abc",
        "accept": "application/json",
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    payload = request.headers["x-acs-content-sha256"]
    sdk = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload, "AK", "SECRET")
    signed = sorted(request.headers)
    canonical = canonical_request(
        "POST",
        "/",
        list(request.query.items()),
        {k: [v] for k, v in request.headers.items()},
        signed,
        payload,
    )
    _, signature = sign_v3("SECRET", canonical)
    assert sdk == (
        f"ACS3-HMAC-SHA256 Credential=AK,SignedHeaders={';'.join(signed)},Signature={signature}"
    )
