"""R-ADJ-8 adapters without a provider: the sandbox verifier is deterministic (outcome from
the name's documented markers), the counter verifier passes at once, and the factory picks
sandbox or Alipay from the settings."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from cqadjudication.adapters.face_alipay import AlipayFaceVerifier, outer_order_no
from cqadjudication.adapters.face_counter import CounterFaceVerifier
from cqadjudication.adapters.face_sandbox import SandboxFaceVerifier, sandbox_outcome
from cqadjudication.adapters.face_verifiers import (
    alipay_timeout_s,
    face_verifier_for,
    face_verifiers_by_name,
)
from cqadjudication.domain.verification import FaceSubject
from cqadjudication.ports import FaceVerifier
from cqcommon.alipay import generate_keypair_pem
from cqcommon.errors import FACE_CERTIFY_ID_INVALID, DomainError
from cqcommon.settings import Settings

ZHANG_WEI = FaceSubject("7ea63454-509e-491c-b387-8e815317f169", "张伟", "500103198803159111")
LIU_YANG = FaceSubject("fdd32fbc-f32a-4d66-88a1-c2cdc595d85d", "刘洋", "50010619950520941X")
FAILS = FaceSubject("0b6f1f0e-0000-4000-8000-00000000f001", "张失败", "500103198803150011")
WAITS = FaceSubject("0b6f1f0e-0000-4000-8000-00000000f002", "李待定", "500103198803150027")


def ref() -> str:
    return str(uuid.uuid4())


async def test_r_adj_8_sandbox_passes_everyone_without_a_marker() -> None:
    verifier = SandboxFaceVerifier()
    for subject in (ZHANG_WEI, LIU_YANG):
        start = await verifier.start(subject, purpose="处理违法", reference=ref())
        assert start.url == f"sandbox://face/{start.certify_id}"
        assert await verifier.result(start.certify_id) == "passed"


@pytest.mark.parametrize(
    ("subject", "outcome"), [(ZHANG_WEI, "passed"), (FAILS, "failed"), (WAITS, "pending")]
)
async def test_r_adj_8_sandbox_is_deterministic(subject: FaceSubject, outcome: str) -> None:
    verifier = SandboxFaceVerifier()
    assert sandbox_outcome(subject) == outcome
    answers = set()
    for _ in range(5):
        start = await verifier.start(subject, purpose="处理违法", reference=ref())
        answers.add(await verifier.result(start.certify_id))
        answers.add(await verifier.result(start.certify_id))  # asking again: same answer
        # Another process (a fresh adapter, no shared state) answers the same.
        answers.add(await SandboxFaceVerifier().result(start.certify_id))
    assert answers == {outcome}


async def test_r_adj_8_sandbox_outcome_depends_on_the_name_only() -> None:
    # The ID number (last digit, region, anything) does not decide the outcome.
    for id_number in ("500103198803159111", "50010619950520941X", "500103198803150000"):
        assert sandbox_outcome(FaceSubject("p", "王强", id_number)) == "passed"
        assert sandbox_outcome(FaceSubject("p", "王失败", id_number)) == "failed"


async def test_r_adj_8_sandbox_certify_id_comes_from_our_reference_not_the_person() -> None:
    verifier = SandboxFaceVerifier()
    reference = ref()
    first = await verifier.start(ZHANG_WEI, purpose="p", reference=reference)
    assert first == await verifier.start(ZHANG_WEI, purpose="p", reference=reference)
    # Another person with the same reference: same id apart from the outcome letter, so
    # nothing in it is derived from personal data.
    other = await verifier.start(FAILS, purpose="p", reference=reference)
    assert other.certify_id[4:] == first.certify_id[4:]
    assert ZHANG_WEI.id_number not in first.certify_id
    assert (await verifier.start(ZHANG_WEI, purpose="p", reference=ref())) != first
    assert re.fullmatch(r"sbx[pfw][0-9a-f]{28}", first.certify_id)


@pytest.mark.parametrize(
    "certify_id",
    ["", "sbxp", "sbxq" + "0" * 28, "sbxp" + "0" * 29, "SBXP" + "0" * 28, "ctr" + "0" * 29],
)
async def test_r_adj_8_sandbox_refuses_a_foreign_certify_id(certify_id: str) -> None:
    with pytest.raises(DomainError) as info:
        await SandboxFaceVerifier().result(certify_id)
    assert info.value.spec is FACE_CERTIFY_ID_INVALID


async def test_r_adj_8_counter_passes_at_once() -> None:
    verifier = CounterFaceVerifier()
    reference = ref()
    start = await verifier.start(FAILS, purpose="窗口处理", reference=reference)
    # The clerk checked the ID card: even a sandbox "fail" name passes at the counter.
    assert await verifier.result(start.certify_id) == "passed"
    assert start.url == f"counter://desk/{start.certify_id}"
    assert start == await verifier.start(FAILS, purpose="窗口处理", reference=reference)
    assert FAILS.id_number not in start.certify_id


@pytest.mark.parametrize("certify_id", ["", "ctr", "ctr" + "g" * 29, "sbxp" + "0" * 28])
async def test_r_adj_8_counter_refuses_a_foreign_certify_id(certify_id: str) -> None:
    with pytest.raises(DomainError) as info:
        await CounterFaceVerifier().result(certify_id)
    assert info.value.spec is FACE_CERTIFY_ID_INVALID


async def test_adapters_need_a_reference() -> None:
    for verifier in (SandboxFaceVerifier(), CounterFaceVerifier()):
        with pytest.raises(ValueError):
            await verifier.start(ZHANG_WEI, purpose="p", reference="")


def test_outer_order_no_fits_alipay() -> None:
    reference = uuid.uuid4()
    assert outer_order_no(str(reference)) == reference.hex
    assert outer_order_no("H" + "1" * 31) == "H" + "1" * 31
    for bad in ("", "x" * 33, "a-b", "订单1"):
        with pytest.raises(ValueError):
            outer_order_no(bad)


async def test_factory_uses_sandbox_in_sandbox_mode() -> None:
    async with httpx.AsyncClient() as http:
        verifier = face_verifier_for(Settings(sandbox_mode=True), http)
        assert isinstance(verifier, SandboxFaceVerifier) and verifier.name == "sandbox"
        by_name = face_verifiers_by_name(Settings(sandbox_mode=True), http)
        assert set(by_name) == {"sandbox", "counter"}


async def test_factory_uses_alipay_outside_sandbox_mode() -> None:
    private_pem, _ = generate_keypair_pem()
    _, alipay_public_pem = generate_keypair_pem()
    settings = Settings(
        sandbox_mode=False,
        alipay_app_private_key_pem=private_pem,
        alipay_public_key_pem=alipay_public_pem,
        grpc_deadline_s=4.0,
    )
    async with httpx.AsyncClient() as http:
        verifier: FaceVerifier = face_verifier_for(settings, http)
        assert isinstance(verifier, AlipayFaceVerifier) and verifier.name == "alipay"
        assert set(face_verifiers_by_name(settings, http)) == {"alipay", "counter"}
    assert alipay_timeout_s(settings) == 2.0


async def test_factory_fails_at_start_without_alipay_keys() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError):
            face_verifier_for(Settings(sandbox_mode=False, alipay_app_private_key_pem=""), http)
