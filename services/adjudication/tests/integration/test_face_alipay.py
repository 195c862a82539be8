"""R-ADJ-8: the ``alipay`` face verifier against the fake Alipay gateway (cqdev.fake_alipay,
on a free loopback port). The fake checks our RSA2 signatures and signs its answers, so
these are the bytes real Alipay would exchange: passed, failed and pending; a tampered or
wrongly signed answer is never "passed"; an expired or foreign certify id is refused."""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cqadjudication.adapters.face_alipay import AlipayFaceVerifier
from cqadjudication.domain.verification import (
    FaceSubject,
    record_result,
    start_verification,
    usable_for,
)
from cqcommon.alipay import AlipayClient, generate_keypair_pem
from cqcommon.errors import (
    FACE_CERTIFY_ID_INVALID,
    FACE_PROVIDER_ANSWER_UNTRUSTED,
    FACE_PROVIDER_REFUSED,
    FACE_PROVIDER_UNAVAILABLE,
    VERIFICATION_EXPIRED,
    DomainError,
    ErrorSpec,
)
from cqdev.fake_alipay import FakeAlipay

INITIALIZE = "alipay.user.certify.open.initialize"
QUERY = "alipay.user.certify.open.query"
ZHANG_WEI = FaceSubject("7ea63454-509e-491c-b387-8e815317f169", "张伟", "500103198803159111")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAlipay]:
    with FakeAlipay() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def verifier(fake: FakeAlipay, http: httpx.AsyncClient) -> AlipayFaceVerifier:
    return AlipayFaceVerifier(fake.make_client(http, timeout_s=5.0))


class _Tamper(httpx.AsyncBaseTransport):
    """A man in the middle: passes requests on, rewrites each answer's text."""

    def __init__(self, edit: Callable[[str], str]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._edit = edit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        raw = await response.aread()
        await response.aclose()
        return httpx.Response(
            response.status_code,
            headers={"content-type": response.headers.get("content-type", "")},
            content=self._edit(raw.decode("utf-8")).encode("utf-8"),
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _client(fake: FakeAlipay, http: httpx.AsyncClient, **overrides: str) -> AlipayClient:
    assert fake.app_private_key_pem is not None
    return AlipayClient(
        gateway_url=overrides.get("gateway_url", fake.gateway_url),
        app_id=fake.app_id,
        app_private_key_pem=overrides.get("app_private_key_pem", fake.app_private_key_pem),
        alipay_public_key_pem=overrides.get("alipay_public_key_pem", fake.alipay_public_key_pem),
        http=http,
        timeout_s=float(overrides.get("timeout_s", "5")),
    )


async def _raises(spec: ErrorSpec, call: Callable[[], Awaitable[object]]) -> DomainError:
    with pytest.raises(DomainError) as info:
        await call()
    assert info.value.spec is spec, info.value.code
    return info.value


# -- the happy paths -------------------------------------------------------------------
async def test_r_adj_8_start_initialises_a_face_check_of_the_named_person(
    fake: FakeAlipay, verifier: AlipayFaceVerifier, http: httpx.AsyncClient
) -> None:
    reference = uuid.uuid4()
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(reference))

    call = fake.calls_of(INITIALIZE)[-1]  # recorded only because our signature verified
    assert call.biz["outer_order_no"] == reference.hex
    assert call.biz["biz_code"] == "FACE"
    assert call.biz["identity_param"] == {
        "identity_type": "CERT_INFO",
        "cert_type": "IDENTITY_CARD",
        "cert_name": "张伟",
        "cert_no": "500103198803159111",
    }
    cert = fake.certification(start.certify_id)
    assert cert is not None and cert.outer_order_no == reference.hex

    # The URL is the signed certify page: the fake accepts it, and only unchanged.
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.url).query))
    assert query["method"] == "alipay.user.certify.open.certify"
    assert json.loads(query["biz_content"]) == {"certify_id": start.certify_id}
    page = await http.get(start.url)
    assert page.status_code == 200 and start.certify_id in page.text
    forged = start.url.replace(start.certify_id, "0" * len(start.certify_id))
    assert "isv.invalid-signature" in (await http.get(forged)).text


async def test_r_adj_8_result_is_pending_then_passed(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    assert await verifier.result(start.certify_id) == "pending"
    fake.set_certify_result(start.certify_id, True)
    assert await verifier.result(start.certify_id) == "passed"
    assert fake.calls_of(QUERY)[-1].biz == {"certify_id": start.certify_id}


async def test_r_adj_8_result_failed(fake: FakeAlipay, verifier: AlipayFaceVerifier) -> None:
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    fake.set_certify_result(start.certify_id, False)
    assert await verifier.result(start.certify_id) == "failed"


async def test_r_adj_8_a_pass_from_alipay_expires_after_the_ttl(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    # Adapter and domain together: a verification passed at Alipay is usable for its own
    # handling and person for ten minutes from when we learnt it, then expired.
    handling, t0, ttl = str(uuid.uuid4()), datetime(2026, 11, 20, 2, 0, tzinfo=UTC), 600
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    v = start_verification(
        start,
        handling_id=handling,
        step="handler",
        person_id=ZHANG_WEI.person_id,
        adapter=verifier.name,
        now=t0,
    )
    fake.set_certify_result(start.certify_id, True)
    v = record_result(v, await verifier.result(v.certify_id), now=t0, ttl=timedelta(seconds=ttl))
    assert usable_for(v, handling, ZHANG_WEI.person_id, t0 + timedelta(seconds=ttl - 1)) is None
    assert usable_for(v, handling, ZHANG_WEI.person_id, t0 + timedelta(seconds=ttl)) is (
        VERIFICATION_EXPIRED
    )


# -- answers that must not be believed ----------------------------------------------------
@pytest.mark.parametrize(
    ("fake_says", "edit"),
    [
        # "F" turned into "T" on the way.
        (False, lambda body: body.replace('"passed":"F"', '"passed":"T"')),
        # No result yet, a "passed" slipped in.
        (None, lambda body: body.replace('"code":"10000"', '"code":"10000","passed":"T"')),
    ],
    ids=["failed-to-passed", "pending-to-passed"],
)
async def test_r_adj_8_a_tampered_answer_is_rejected(
    fake: FakeAlipay,
    verifier: AlipayFaceVerifier,
    fake_says: bool | None,
    edit: Callable[[str], str],
) -> None:
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    fake.set_certify_result(start.certify_id, fake_says)
    edited: list[str] = []

    def tamper(body: str) -> str:
        changed = edit(body)
        edited.append(changed)
        return changed

    async with httpx.AsyncClient(transport=_Tamper(tamper)) as mitm:
        behind_mitm = AlipayFaceVerifier(_client(fake, mitm))
        error = await _raises(
            FACE_PROVIDER_ANSWER_UNTRUSTED, lambda: behind_mitm.result(start.certify_id)
        )
    assert '"passed":"T"' in edited[-1]  # the edit happened: the test can fail
    assert error.kind.value == "unavailable"
    # Untouched, the same answer reads as what the fake says.
    assert await verifier.result(start.certify_id) == (
        "failed" if fake_says is False else "pending"
    )


async def test_r_adj_8_an_answer_signed_by_someone_else_is_rejected(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    reference = str(uuid.uuid4())
    _, stranger_public = generate_keypair_pem()
    wrong_key = AlipayFaceVerifier(_client(fake, http, alipay_public_key_pem=stranger_public))
    await _raises(
        FACE_PROVIDER_ANSWER_UNTRUSTED,
        lambda: wrong_key.start(ZHANG_WEI, purpose="处理违法", reference=reference),
    )
    start = await AlipayFaceVerifier(_client(fake, http)).start(
        ZHANG_WEI, purpose="处理违法", reference=reference
    )
    fake.set_certify_result(start.certify_id, True)  # even a genuine pass is not believed
    await _raises(FACE_PROVIDER_ANSWER_UNTRUSTED, lambda: wrong_key.result(start.certify_id))


# -- certify ids that are not (or no longer) ours ----------------------------------------
async def test_r_adj_8_an_expired_certify_id_is_refused(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    fake.set_certify_result(start.certify_id, True)
    # Past its validity (23 h) Alipay answers this signed business failure for the id.
    fake.fail_next(
        QUERY,
        code="40004",
        msg="Business Failed",
        sub_code="OPEN_CERTIFY_BILL_NOT_EXIST",
        sub_msg="无效的certify_id",
    )
    error = await _raises(FACE_CERTIFY_ID_INVALID, lambda: verifier.result(start.certify_id))
    assert error.details == {"provider_code": "OPEN_CERTIFY_BILL_NOT_EXIST"}


async def test_r_adj_8_a_foreign_certify_id_is_refused(
    fake: FakeAlipay, verifier: AlipayFaceVerifier, http: httpx.AsyncClient
) -> None:
    # Started by another app (another Alipay gateway with its own keys and app id).
    with FakeAlipay(app_id="2021000000000777") as other:
        theirs = await AlipayFaceVerifier(other.make_client(http)).start(
            ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4())
        )
        other.set_certify_result(theirs.certify_id, True)
    await _raises(FACE_CERTIFY_ID_INVALID, lambda: verifier.result(theirs.certify_id))
    await _raises(FACE_CERTIFY_ID_INVALID, lambda: verifier.result("f" * 32))


@pytest.mark.parametrize("certify_id", ["", "x" * 65, "abc&method=x", "证书", "a b"])
async def test_r_adj_8_a_malformed_certify_id_is_refused_without_a_call(
    fake: FakeAlipay, verifier: AlipayFaceVerifier, certify_id: str
) -> None:
    before = len(fake.calls_of(QUERY))
    await _raises(FACE_CERTIFY_ID_INVALID, lambda: verifier.result(certify_id))
    assert len(fake.calls_of(QUERY)) == before


# -- the provider cannot answer, or says no --------------------------------------------
async def test_r_adj_8_system_busy_is_unavailable(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    fake.fail_next(INITIALIZE)  # 20000 isp.unknow-error
    error = await _raises(
        FACE_PROVIDER_UNAVAILABLE,
        lambda: verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4())),
    )
    assert error.details == {"retry_after_s": 2}
    start = await verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    fake.fail_next(QUERY)
    await _raises(FACE_PROVIDER_UNAVAILABLE, lambda: verifier.result(start.certify_id))


async def test_r_adj_8_transport_errors_are_unavailable(
    fake: FakeAlipay, http: httpx.AsyncClient
) -> None:
    with FakeAlipay() as gone:
        closed_url = gone.gateway_url  # nothing listens here once it stopped
    unreachable = AlipayFaceVerifier(_client(fake, http, gateway_url=closed_url))
    await _raises(
        FACE_PROVIDER_UNAVAILABLE,
        lambda: unreachable.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4())),
    )
    slow = AlipayFaceVerifier(_client(fake, http, timeout_s="0.3"))
    start = await slow.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    fake.delay_next(QUERY, 2.0)
    await _raises(FACE_PROVIDER_UNAVAILABLE, lambda: slow.result(start.certify_id))


async def test_r_adj_8_alipay_refusing_to_start_names_the_counter(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    fake.fail_next(
        INITIALIZE,
        code="40004",
        msg="Business Failed",
        sub_code="INVALID_PARAMETER",
        sub_msg="参数有误",
    )
    error = await _raises(
        FACE_PROVIDER_REFUSED,
        lambda: verifier.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4())),
    )
    assert error.details == {"provider_code": "INVALID_PARAMETER"}
    assert "窗口" in error.message_zh


async def test_r_adj_8_the_id_number_never_reaches_logs_or_errors(
    fake: FakeAlipay, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Alipay's signature error quotes the whole signed string, ID number included.
    wrong_private, _ = generate_keypair_pem()
    misconfigured = AlipayFaceVerifier(_client(fake, http, app_private_key_pem=wrong_private))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DomainError) as info:
        await misconfigured.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    error = info.value
    assert error.spec is FACE_PROVIDER_UNAVAILABLE
    assert error.__cause__ is None and error.__suppress_context__
    assert "isv.invalid-signature" in caplog.text  # what went wrong is logged ...
    seen = caplog.text + json.dumps(error.to_payload(), ensure_ascii=False) + str(error)
    assert ZHANG_WEI.id_number not in seen  # ... but not whose ID number it was
    assert ZHANG_WEI.name not in seen

    caplog.clear()
    fine = AlipayFaceVerifier(_client(fake, http))
    start = await fine.start(ZHANG_WEI, purpose="处理违法", reference=str(uuid.uuid4()))
    assert start.certify_id in caplog.text
    assert ZHANG_WEI.id_number not in caplog.text and ZHANG_WEI.name not in caplog.text


async def test_start_refuses_a_reference_alipay_cannot_take(
    fake: FakeAlipay, verifier: AlipayFaceVerifier
) -> None:
    before = len(fake.calls_of(INITIALIZE))
    with pytest.raises(ValueError):
        await verifier.start(ZHANG_WEI, purpose="处理违法", reference="not/a/reference")
    assert len(fake.calls_of(INITIALIZE)) == before
