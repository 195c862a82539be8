"""The production login adapter against a fake Alipay gateway that checks RSA2
signatures (the real open-platform protocol): outside sandbox mode an auth code is
exchanged with ``alipay.system.oauth.token``, and every failure refuses the login."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cqcommon.alipay import generate_keypair_pem
from cqcommon.errors import DomainError
from cqcommon.settings import Settings
from cqdev.fake_alipay import FakeAlipay
from cqgateway.alipay_oauth import OpenPlatformAlipayOAuth, make_alipay_oauth


@pytest.fixture
def fake() -> Iterator[FakeAlipay]:
    with FakeAlipay() as server:
        yield server


def settings_for(fake: FakeAlipay, *, app_private_key_pem: str | None = None) -> Settings:
    return Settings(
        sandbox_mode=False,
        alipay_gateway_url=fake.gateway_url,
        alipay_app_id=fake.app_id,
        alipay_app_private_key_pem=app_private_key_pem or fake.app_private_key_pem or "",
        alipay_public_key_pem=fake.alipay_public_key_pem,
    )


async def test_auth_code_is_exchanged_for_the_alipay_user(fake: FakeAlipay) -> None:
    fake.register_auth_code("code-123", "2088123412341234")
    async with httpx.AsyncClient() as http:
        oauth = make_alipay_oauth(settings_for(fake), http)
        assert isinstance(oauth, OpenPlatformAlipayOAuth)
        assert await oauth.exchange("code-123") == "2088123412341234"
        # codes are single use, as Alipay's are
        with pytest.raises(DomainError) as err:
            await oauth.exchange("code-123")
    assert err.value.code == "AUTH_CODE_INVALID"


async def test_sandbox_codes_do_not_log_in_outside_sandbox_mode_r_sbx_1(
    fake: FakeAlipay,
) -> None:
    """R-SBX-1: only sandbox mode takes `sandbox:<id>` without asking Alipay."""
    async with httpx.AsyncClient() as http:
        oauth = make_alipay_oauth(settings_for(fake), http)
        with pytest.raises(DomainError) as err:
            await oauth.exchange("never-issued")
    assert err.value.code == "AUTH_CODE_INVALID"


async def test_request_signed_with_a_wrong_key_does_not_log_in(fake: FakeAlipay) -> None:
    fake.register_auth_code("code-456", "2088123412341235")
    wrong_key, _ = generate_keypair_pem()
    async with httpx.AsyncClient() as http:
        oauth = make_alipay_oauth(settings_for(fake, app_private_key_pem=wrong_key), http)
        with pytest.raises(DomainError) as err:
            await oauth.exchange("code-456")
    assert err.value.code == "AUTH_CODE_INVALID"
    assert err.value.details["alipay_sub_code"] == "isv.invalid-signature"


async def test_alipay_timing_out_is_unavailable_not_a_login(fake: FakeAlipay) -> None:
    fake.register_auth_code("code-789", "2088123412341236")
    fake.delay_next("alipay.system.oauth.token", 3.0)
    async with httpx.AsyncClient() as http:
        oauth = make_alipay_oauth(
            settings_for(fake).model_copy(update={"grpc_deadline_s": 0.5}), http
        )
        with pytest.raises(DomainError) as err:
            await oauth.exchange("code-789")
    assert err.value.code == "ALIPAY_UNAVAILABLE"
