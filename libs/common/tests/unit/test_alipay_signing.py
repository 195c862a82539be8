"""Unit tests of cqcommon.alipay's pure parts: canonical string, RSA2, responses, money."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cqcommon.alipay import (
    AlipayError,
    AlipaySignatureError,
    AlipayTransportError,
    build_request_params,
    canonical_string,
    extract_signed_content,
    fen_to_yuan,
    format_timestamp,
    generate_keypair_pem,
    load_private_key,
    load_public_key,
    parse_gateway_response,
    parse_trade_notification,
    rsa2_sign,
    rsa2_verify,
    sign_params,
    verify_notification,
    yuan_to_fen,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

APP_ID = "2021000000000042"


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_keypair_pem()


@pytest.fixture(scope="module")
def other_keys() -> tuple[str, str]:
    return generate_keypair_pem()


def _raw_verify(public_pem: str, content: str, sign: str) -> None:
    """Independent check with cryptography directly (raises InvalidSignature)."""
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(sign), content.encode(), padding.PKCS1v15(), hashes.SHA256())


# -- canonical string ---------------------------------------------------------------------
def test_canonical_string_sorts_drops_sign_and_empty_and_keeps_values_raw() -> None:
    params = {
        "method": "alipay.trade.query",
        "app_id": "2021",
        "sign": "xxx",
        "notify_url": "",
        "biz_content": '{"subject":"罚款 a&b=c","url":"https://x/y?z=1"}',
        "charset": "utf-8",
    }
    assert canonical_string(params) == (
        'app_id=2021&biz_content={"subject":"罚款 a&b=c","url":"https://x/y?z=1"}'
        "&charset=utf-8&method=alipay.trade.query"
    )


def test_canonical_string_for_notifications_also_drops_sign_type() -> None:
    params = {"b": "2", "a": "1", "sign_type": "RSA2", "sign": "s"}
    assert canonical_string(params) == "a=1&b=2&sign_type=RSA2"
    assert canonical_string(params, exclude=("sign", "sign_type")) == "a=1&b=2"


# -- RSA2 -----------------------------------------------------------------------------------
def test_sign_params_is_sha256withrsa_over_the_canonical_string(keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    sign = sign_params({"b": "二", "a": "1", "sign_type": "RSA2"}, private_pem)
    # Checked with cryptography directly over the string written out by hand.
    _raw_verify(public_pem, "a=1&b=二&sign_type=RSA2", sign)
    with pytest.raises(InvalidSignature):
        _raw_verify(public_pem, "a=1&b=二", sign)


def test_round_trip_and_tampering(keys: tuple[str, str], other_keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    sign = rsa2_sign("a=1&b=2", private_pem)
    assert rsa2_verify("a=1&b=2", sign, public_pem)
    assert not rsa2_verify("a=1&b=3", sign, public_pem)
    assert not rsa2_verify("a=1&b=2", sign, other_keys[1])
    assert not rsa2_verify("a=1&b=2", "not base64!!", public_pem)
    assert not rsa2_verify("a=1&b=2", base64.b64encode(b"short").decode(), public_pem)


def test_keys_load_from_bare_base64_and_pkcs1(keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    bare_public = "".join(public_pem.strip().splitlines()[1:-1])
    private = load_private_key(private_pem)
    pkcs1 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    bare_pkcs1 = "".join(pkcs1.strip().splitlines()[1:-1])
    sign = rsa2_sign("x=1", bare_pkcs1)
    assert rsa2_verify("x=1", sign, bare_public)
    assert load_public_key(bare_public).public_numbers() == private.public_key().public_numbers()
    with pytest.raises(ValueError):
        load_private_key("not a key")


# -- requests -------------------------------------------------------------------------------
def test_build_request_params_common_fields_and_signature(keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    params = build_request_params(
        app_id=APP_ID,
        method="alipay.trade.create",
        private_key=private_pem,
        biz_content={"subject": "交通罚款", "total_amount": "12.50"},
        notify_url="https://example.test/api/v1/alipay/notify",
        now=datetime(2025, 3, 1, 16, 30, 5, tzinfo=UTC),
    )
    assert params["timestamp"] == "2025-03-02 00:30:05"  # Asia/Shanghai, UTC+8
    assert params["biz_content"] == '{"subject":"交通罚款","total_amount":"12.50"}'
    assert {k: params[k] for k in ("format", "charset", "sign_type", "version")} == {
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "version": "1.0",
    }
    assert params["notify_url"] == "https://example.test/api/v1/alipay/notify"
    # sign_type is part of a request's signed string (unlike a notification's).
    assert rsa2_verify(canonical_string(params), params["sign"], public_pem)
    assert not rsa2_verify(
        canonical_string(params, exclude=("sign", "sign_type")), params["sign"], public_pem
    )


def test_build_request_params_extra_and_conflicts(keys: tuple[str, str]) -> None:
    params = build_request_params(
        app_id=APP_ID,
        method="alipay.system.oauth.token",
        private_key=keys[0],
        extra={"grant_type": "authorization_code", "code": "abc"},
    )
    assert params["code"] == "abc"
    assert "biz_content" not in params
    with pytest.raises(ValueError):
        build_request_params(
            app_id=APP_ID, method="m", private_key=keys[0], extra={"app_id": "other"}
        )


def test_format_timestamp_shape() -> None:
    assert format_timestamp(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)) == "2025-01-01 07:59:59"


# -- responses ------------------------------------------------------------------------------
def _signed_body(private_pem: str, root: str, content: str, *, sign_first: bool = False) -> str:
    sign = rsa2_sign(content, private_pem)
    if sign_first:
        return f'{{ "sign" : "{sign}" ,\n "{root}" :  {content} }}'
    return f'{{"{root}":{content},"sign":"{sign}"}}'


def test_response_is_verified_over_the_raw_text_not_a_reserialisation(
    keys: tuple[str, str],
) -> None:
    private_pem, public_pem = keys
    # Spacing, key order and \\u escapes that json.dumps would not reproduce, and a
    # value containing ',"sign":' that a naive substring search would cut at.
    content = (
        '{ "msg" : "Success", "code":"10000", "subject":"\\u7f5a\\u6b3e",'
        ' "note":"x,\\"sign\\":\\"y", "trade_no":"2025" }'
    )
    for sign_first in (False, True):
        raw = _signed_body(
            private_pem, "alipay_trade_query_response", content, sign_first=sign_first
        )
        root, extracted, _ = extract_signed_content(raw, "alipay.trade.query")
        assert (root, extracted) == ("alipay_trade_query_response", content)
        body = parse_gateway_response(raw, "alipay.trade.query", public_pem)
        assert body["subject"] == "罚款"
        assert body["note"] == 'x,"sign":"y'


def test_tampered_or_foreign_response_is_rejected(
    keys: tuple[str, str], other_keys: tuple[str, str]
) -> None:
    private_pem, public_pem = keys
    raw = _signed_body(private_pem, "alipay_trade_query_response", '{"code":"10000","a":"1"}')
    with pytest.raises(AlipaySignatureError):
        parse_gateway_response(raw.replace('"a":"1"', '"a":"2"'), "alipay.trade.query", public_pem)
    with pytest.raises(AlipaySignatureError):
        parse_gateway_response(raw, "alipay.trade.query", other_keys[1])
    unsigned = '{"alipay_trade_query_response":{"code":"10000","a":"1"}}'
    with pytest.raises(AlipaySignatureError):
        parse_gateway_response(unsigned, "alipay.trade.query", public_pem)


def test_business_and_gateway_errors_raise_typed_alipay_error(keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    content = json.dumps(
        {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ACQ.TRADE_NOT_EXIST",
            "sub_msg": "交易不存在",
        },
        ensure_ascii=False,
    )
    raw = _signed_body(private_pem, "alipay_trade_query_response", content)
    with pytest.raises(AlipayError) as info:
        parse_gateway_response(raw, "alipay.trade.query", public_pem)
    err = info.value
    assert (err.code, err.sub_code, err.sub_msg) == ("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
    assert err.not_found and err.verified and not err.outcome_unknown

    unsigned_error = (
        '{"error_response":{"code":"20000","msg":"Service Currently Unavailable",'
        '"sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}}'
    )
    with pytest.raises(AlipayError) as info:
        parse_gateway_response(unsigned_error, "alipay.trade.create", public_pem)
    assert info.value.outcome_unknown and not info.value.verified


def test_malformed_bodies_are_transport_errors(keys: tuple[str, str]) -> None:
    for raw in ("<html>502</html>", '{"other_response":{}}', '{"a":1'):
        with pytest.raises(AlipayTransportError):
            parse_gateway_response(raw, "alipay.trade.query", keys[1])


# -- notifications --------------------------------------------------------------------------
def _notification(private_pem: str, **overrides: str) -> dict[str, str]:
    params = {
        "notify_type": "trade_status_sync",
        "notify_id": "n1",
        "notify_time": "2025-03-02 10:00:00",
        "app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "out_trade_no": "P1",
        "trade_no": "2025030222001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "200.00",
        "buyer_id": "2088000000000001",
        "gmt_payment": "2025-03-02 09:59:58",
        "subject": "交通违法罚款",
    }
    params.update(overrides)
    params["sign"] = rsa2_sign(canonical_string(params, exclude=("sign", "sign_type")), private_pem)
    return params


def test_genuine_notification_is_accepted_and_parsed(keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    params = _notification(private_pem)
    assert verify_notification(params, public_pem, APP_ID)
    parsed = parse_trade_notification(params)
    assert parsed.total_amount_fen == 20000
    assert parsed.paid_at is not None and parsed.paid_at.utcoffset() is not None
    assert (parsed.out_trade_no, parsed.trade_status) == ("P1", "TRADE_SUCCESS")


def test_bad_notifications_are_rejected(keys: tuple[str, str], other_keys: tuple[str, str]) -> None:
    private_pem, public_pem = keys
    genuine = _notification(private_pem)
    assert not verify_notification(genuine | {"total_amount": "0.01"}, public_pem, APP_ID)
    assert not verify_notification(genuine, public_pem, "2021000000000043")  # other app
    assert not verify_notification(_notification(other_keys[0]), public_pem, APP_ID)  # forged
    assert not verify_notification(
        {k: v for k, v in genuine.items() if k != "sign"}, public_pem, APP_ID
    )
    assert not verify_notification(genuine | {"sign_type": "RSA"}, public_pem, APP_ID)
    # Signed over a string that wrongly includes sign_type: not Alipay's rule, rejected.
    wrong_rule = dict(genuine)
    wrong_rule["sign"] = rsa2_sign(canonical_string(genuine), private_pem)
    assert not verify_notification(wrong_rule, public_pem, APP_ID)


# -- money ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (1250, "12.50"),
        (20000, "200.00"),
        (123456789, "1234567.89"),
    ],
)
def test_fen_to_yuan(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(("yuan", "fen"), [("12.5", 1250), ("12", 1200), ("0.1", 10), ("0", 0)])
def test_yuan_to_fen_accepts_short_forms(yuan: str, fen: int) -> None:
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(
    "bad",
    ["", "-1.00", "1.234", "1e3", " 1.00", "1.00 ", "1,00", ".50", "1.", "01.00", "NaN", "+1"],
)
def test_yuan_to_fen_rejects_anything_else(bad: str) -> None:
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_fen_to_yuan_rejects_negative_and_non_int() -> None:
    with pytest.raises(ValueError):
        fen_to_yuan(-1)
    with pytest.raises(TypeError):
        fen_to_yuan(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fen_to_yuan(True)


@given(st.integers(min_value=0, max_value=10**12))
def test_yuan_fen_round_trip_is_exact(fen: int) -> None:
    assert yuan_to_fen(fen_to_yuan(fen)) == fen
