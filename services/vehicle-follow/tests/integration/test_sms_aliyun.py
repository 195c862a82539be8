"""``AliyunSmsSender`` (the official Alibaba Cloud SDK) against the local fake SMS endpoint
(``cqdev.fake_sms``), which checks each request's ACS3-HMAC-SHA256 signature with the
AccessKey secret as Alibaba Cloud does (R-SMS-3)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cqcommon.settings import Settings
from cqcommon.sms import SmsUnavailableError
from cqcommon.sms.aliyun import AliyunSmsSender
from cqcommon.sms.senders import sms_sender_for
from cqdev.fake_sms import FakeSms, canonical_request, sign_v3
from cqdev.stack import free_port

pytestmark = pytest.mark.integration

SIGN_NAME = "重庆交警"
TEMPLATE = "SMS_000000000"
PHONE = "13900000005"
CODE = "042917"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSms]:
    with FakeSms(sign_names={SIGN_NAME}, template_codes={TEMPLATE}) as server:
        yield server


@pytest.fixture(autouse=True)
def _injections_end_with_their_test(fake: FakeSms) -> Iterator[None]:
    yield
    fake.clear_injections()


def sender_for(
    fake: FakeSms, *, secret: str | None = None, timeout_s: float = 2.0
) -> AliyunSmsSender:
    return AliyunSmsSender(
        access_key_id=fake.access_key_id,
        access_key_secret=fake.access_key_secret if secret is None else secret,
        sign_name=SIGN_NAME,
        endpoint=fake.endpoint,
        timeout_s=timeout_s,
    )


async def test_r_sms_3_a_message_reaches_the_fake_signed_with_its_fields(fake: FakeSms) -> None:
    before = len(fake.messages)
    biz_id = await sender_for(fake).send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
    [message] = fake.messages[before:]
    assert biz_id == message.biz_id
    assert message.phone_numbers == PHONE
    assert message.sign_name == SIGN_NAME
    assert message.template_code == TEMPLATE
    assert message.params == {"code": CODE}
    assert message.access_key_id == fake.access_key_id
    call = fake.calls[-1]
    assert (call.action, call.code) == ("SendSms", "OK")
    assert json.loads(call.query["TemplateParam"]) == {"code": CODE}
    assert call.headers["x-acs-version"] == "2017-05-25"


async def test_a_wrong_secret_is_refused_by_the_fake(fake: FakeSms) -> None:
    before = len(fake.messages)
    with pytest.raises(SmsUnavailableError) as refused:
        await sender_for(fake, secret="not-the-secret").send(
            phone=PHONE, template_code=TEMPLATE, params={"code": CODE}
        )
    assert str(refused.value) == "SignatureDoesNotMatch"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert len(fake.messages) == before
    assert fake.calls[-1].status == 400


async def test_an_unknown_access_key_is_refused(fake: FakeSms) -> None:
    sender = AliyunSmsSender(
        access_key_id="LTAI-nobody",
        access_key_secret=fake.access_key_secret,
        sign_name=SIGN_NAME,
        endpoint=fake.endpoint,
    )
    with pytest.raises(SmsUnavailableError, match=r"^InvalidAccessKeyId\.NotFound$"):
        await sender.send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})


async def test_a_business_refusal_carries_the_providers_code(fake: FakeSms) -> None:
    fake.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    with pytest.raises(SmsUnavailableError, match=r"^isv\.BUSINESS_LIMIT_CONTROL$"):
        await sender_for(fake).send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
    with pytest.raises(SmsUnavailableError, match=r"^isv\.MOBILE_NUMBER_ILLEGAL$"):
        await sender_for(fake).send(phone="12345", template_code=TEMPLATE, params={"code": CODE})
    with pytest.raises(SmsUnavailableError, match=r"^isv\.SMS_TEMPLATE_ILLEGAL$"):
        await sender_for(fake).send(phone=PHONE, template_code="SMS_999", params={"code": CODE})


async def test_a_server_error_is_unavailable(fake: FakeSms) -> None:
    fake.fail_next(
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
        status=503,
    )
    with pytest.raises(SmsUnavailableError, match=r"^ServiceUnavailable$"):
        await sender_for(fake).send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})


async def test_a_slow_gateway_is_unavailable_within_the_timeout(fake: FakeSms) -> None:
    fake.delay_next(5.0)
    started = time.monotonic()
    with pytest.raises(SmsUnavailableError, match=r"^timeout$"):
        await sender_for(fake, timeout_s=0.5).send(
            phone=PHONE, template_code=TEMPLATE, params={"code": CODE}
        )
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5


async def test_a_gateway_that_is_down_is_unavailable() -> None:
    sender = AliyunSmsSender(
        access_key_id="LTAI-x",
        access_key_secret="secret",
        sign_name=SIGN_NAME,
        endpoint=f"http://127.0.0.1:{free_port()}",
        timeout_s=2.0,
    )
    started = time.monotonic()
    with pytest.raises(SmsUnavailableError):
        await sender.send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
    assert time.monotonic() - started < 2.0


async def test_no_parameter_value_reaches_the_logs(
    fake: FakeSms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sender_for(fake).send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
    failures: list[SmsUnavailableError] = []
    fake.fail_next("isv.BUSINESS_LIMIT_CONTROL", f"echo {CODE}")
    fake.delay_next(5.0)
    for sender in (
        sender_for(fake),
        sender_for(fake, secret="wrong"),
        sender_for(fake, timeout_s=0.3),
    ):
        with pytest.raises(SmsUnavailableError) as failed:
            await sender.send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
        failures.append(failed.value)
    assert [str(f) for f in failures] == [
        "isv.BUSINESS_LIMIT_CONTROL",
        "SignatureDoesNotMatch",
        "timeout",
    ]
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    logged = "\n".join(
        r.getMessage() + (r.exc_text or "") + str(r.exc_info or "") for r in caplog.records
    )
    assert CODE not in logged
    assert PHONE not in logged
    assert all(CODE not in str(f) and PHONE not in str(f) for f in failures)


async def test_the_settings_pick_the_aliyun_sender(test_settings: Settings, fake: FakeSms) -> None:
    settings = test_settings.model_copy(
        update={
            "sms_provider": "aliyun",
            "aliyun_sms_endpoint": fake.endpoint,
            "aliyun_access_key_id": fake.access_key_id,
            "aliyun_access_key_secret": fake.access_key_secret,
            "aliyun_sms_sign_name": SIGN_NAME,
            "sms_timeout_s": 2.0,
        }
    )
    sender = sms_sender_for(settings, redis=None)  # type: ignore[arg-type]
    assert isinstance(sender, AliyunSmsSender)
    await sender.send(phone=PHONE, template_code=TEMPLATE, params={"code": CODE})
    assert fake.messages_to(PHONE)[-1].params == {"code": CODE}


def _signed_request(
    fake: FakeSms, *, nonce: str, at: datetime, query: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """A SendSms request signed by hand, as the SDK signs it."""
    host = fake.url.removeprefix("http://")
    headers = {
        "host": host,
        "x-acs-action": "SendSms",
        "x-acs-version": "2017-05-25",
        "x-acs-date": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    signed = sorted(headers)
    canonical = canonical_request(
        "POST",
        "/",
        list(query.items()),
        {k: [v] for k, v in headers.items()},
        signed,
        headers["x-acs-content-sha256"],
    )
    _, signature = sign_v3(fake.access_key_secret, canonical)
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={fake.access_key_id},SignedHeaders={';'.join(signed)},"
        f"Signature={signature}"
    )
    return fake.url + "/?" + httpx.QueryParams(query).__str__(), headers


async def test_the_fake_refuses_a_replayed_nonce_and_a_stale_date(fake: FakeSms) -> None:
    query = {
        "PhoneNumbers": PHONE,
        "SignName": SIGN_NAME,
        "TemplateCode": TEMPLATE,
        "TemplateParam": json.dumps({"code": CODE}),
    }
    now = datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        url, headers = _signed_request(
            fake, nonce="nonce-1-" + str(time.time_ns()), at=now, query=query
        )
        first = await http.post(url, headers=headers)
        assert first.json()["Code"] == "OK"
        replay = await http.post(url, headers=headers)
        assert replay.status_code == 400
        assert replay.json()["Code"] == "SignatureNonceUsed"
        url, headers = _signed_request(
            fake,
            nonce="nonce-2-" + str(time.time_ns()),
            at=now - timedelta(minutes=20),
            query=query,
        )
        stale = await http.post(url, headers=headers)
        assert stale.json()["Code"] == "InvalidTimeStamp.Expired"
        # a parameter changed after signing breaks the signature
        url, headers = _signed_request(
            fake, nonce="nonce-3-" + str(time.time_ns()), at=now, query=query
        )
        tampered = await http.post(url.replace(PHONE, "13900000006"), headers=headers)
        assert tampered.json()["Code"] == "SignatureDoesNotMatch"
        assert set(tampered.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
