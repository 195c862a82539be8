"""R-PAY-8 receipts: the pure receipt data and wording (cqpayment.domain.receipts) and the
PDF (cqpayment.adapters.receipt_pdf), read back with pypdf: the text extracts, the CJK
font is an embedded subset from the PyPI package, and the bytes are reproducible."""

from __future__ import annotations

import dataclasses
import importlib.resources
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cqpayment.adapters.receipt_pdf import FONT_PACKAGE, PdfReceiptRenderer, font_path
from cqpayment.domain.receipts import (
    ISSUER_ZH,
    TITLE_ZH,
    Receipt,
    ReceiptViolation,
    format_shanghai,
    format_yuan,
    receipt_filename,
    receipt_rows,
    yuan_in_words,
)
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

VIOLATION = ReceiptViolation(
    code="1345",
    description_zh="机动车驾驶人驾驶机动车超过规定时速百分之二十以上未达到百分之五十的",
    occurred_at=datetime(2026, 10, 1, 1, 2, 3, tzinfo=UTC),  # 09:02:03 in Chongqing
    place="重庆市渝中区解放碑民族路口",
)

ALIPAY = Receipt(
    payment_id="pay-6f1c2d",
    decision_no="5001041234567890",
    violation=VIOLATION,
    plate_number="渝A***45",
    party_name="张*",
    fine_fen=20_000,
    late_fee_fen=600,
    amount_fen=20_600,
    paid_at=datetime(2026, 11, 21, 6, 3, 5, tzinfo=UTC),  # 14:03:05 local
    channel="alipay",
    provider_trade_no="2026112122001400001234567890",
    out_trade_no="CQP20261121000001",
    issued_at=datetime(2026, 11, 21, 6, 3, 9, tzinfo=UTC),
)

COUNTER = dataclasses.replace(
    ALIPAY,
    payment_id="pay-counter-1",
    plate_number="渝AD12345",
    party_name="欧阳堃",  # 堃 is outside GB 2312: the font must still have it
    late_fee_fen=0,
    amount_fen=20_000,
    channel="counter_cash",
    provider_trade_no="",
    out_trade_no="CQC20261121000002",
)

RENDERER = PdfReceiptRenderer()


@pytest.fixture(scope="module")
def alipay_pdf() -> bytes:
    # rendering parses a 5 MB font (~0.3 s): once for the tests that only read it
    return RENDERER.render(ALIPAY)


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _fonts(pdf: bytes) -> list[Any]:
    resources: Any = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]
    return [ref.get_object() for ref in resources["/Font"].values()]


# -- the PDF --------------------------------------------------------------------------------
def test_receipt_pdf_text_extracts_back_r_pay_8(alipay_pdf: bytes) -> None:
    """R-PAY-8: a real PDF whose extracted text holds the title, the decision, the
    violation, the amounts in yuan, the payment time in Asia/Shanghai and the trade number."""
    assert alipay_pdf.startswith(b"%PDF-")
    text = _text(alipay_pdf)
    for expected in (
        ISSUER_ZH,
        "重庆市公安局交通管理局",
        TITLE_ZH,
        "交通违法罚款缴款凭证",
        "5001041234567890",
        "2026112122001400001234567890",
        "CQP20261121000001",
        "pay-6f1c2d",
        "200.00 元",
        "6.00 元",
        "206.00 元",
        "贰佰零陆元整",
        "支付宝",
        "2026-11-21 14:03:05",  # paid at, local time
        "2026-10-01 09:02:03",  # the violation, local time
        "1345",
        "重庆市渝中区解放碑民族路口",
        "渝A***45",
        "张*",
        "处罚决定书编号",
    ):
        assert expected in text, expected
    # the description may wrap in its cell; joined again it is all there
    assert VIOLATION.description_zh in text.replace("\n", "")


def test_receipt_pdf_embeds_a_subset_of_the_cjk_font_r_pay_8(alipay_pdf: bytes) -> None:
    """R-PAY-8: the Chinese font is embedded (FontFile2, TrueType) as a subset with a
    ToUnicode map; the whole PDF is far smaller than the 5 MB font file."""
    (font,) = _fonts(alipay_pdf)
    assert font["/Subtype"] == "/Type0"
    assert "/ToUnicode" in font
    base_font = str(font["/BaseFont"])
    prefix, _, name = base_font.lstrip("/").partition("+")
    assert len(prefix) == 6 and prefix.isupper()  # the PDF subset tag, e.g. MPDFAA+
    assert name == "WenQuanYiMicroHei"
    descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
    assert "/FontFile2" in descriptor or "/FontFile3" in descriptor
    assert b"/FontFile2" in alipay_pdf
    assert len(alipay_pdf) < 100_000 < font_path().stat().st_size


def test_the_font_comes_from_the_pypi_package_not_the_system_r_pay_8() -> None:
    """R-PAY-8: the font file is the one inside the installed PyPI package, located with
    importlib.resources; no system font directory is involved."""
    path = font_path()
    package_dir = importlib.resources.files(FONT_PACKAGE)
    assert path.is_file()
    assert path.is_relative_to(str(package_dir))
    assert path.suffix == ".ttc"
    assert not any(part in str(path) for part in ("/usr/share/fonts", "/etc/fonts", ".fonts"))
    assert font_path() is path  # located once per process


def test_receipt_pdf_is_a4_with_metadata_from_the_receipt_r_pay_8(alipay_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(alipay_pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in pt
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "交通违法罚款缴款凭证 5001041234567890"
    # the creation date is the receipt's issue time in Chongqing, not the clock's
    assert meta.creation_date == datetime(
        2026, 11, 21, 14, 3, 9, tzinfo=timezone(timedelta(hours=8))
    )


def test_the_same_receipt_renders_the_same_bytes_r_pay_8(alipay_pdf: bytes) -> None:
    """R-PAY-8: a receipt regenerated from the same payment is byte-identical: laid out
    again by a renderer that caches nothing, not only served from a cache."""
    fresh = PdfReceiptRenderer(cached=0)
    assert fresh.render(ALIPAY) == alipay_pdf
    assert fresh.rendered == 1
    assert fresh.render(dataclasses.replace(ALIPAY, out_trade_no="CQP-OTHER")) != alipay_pdf


def test_a_receipt_downloaded_again_is_served_from_the_cache_r_pay_8() -> None:
    """A paid receipt never changes: the second download of the same receipt is the
    cached document (each rendering costs ~0.25 s of CPU); another receipt, or the
    masked version another payer sees, is laid out on its own; the cache is bounded."""
    renderer = PdfReceiptRenderer(cached=2)
    first = renderer.render(COUNTER)
    assert renderer.render(COUNTER) is first
    assert renderer.rendered == 1
    masked = dataclasses.replace(COUNTER, party_name="欧阳*", plate_number="渝AD***45")
    assert renderer.render(masked) != first
    assert renderer.rendered == 2
    renderer.render(ALIPAY)  # a third receipt pushes the least recently used one out
    assert renderer.rendered == 3
    assert renderer.render(masked) is not None and renderer.rendered == 3  # still kept
    renderer.render(COUNTER)  # evicted: laid out again, to the same bytes
    assert renderer.rendered == 4


def test_counter_receipt_without_a_provider_trade_number_r_pay_8() -> None:
    """R-PAY-8: a counter cash payment has no provider trade number; the receipt says so,
    names the counter channel, and prints a name outside GB 2312."""
    text = _text(RENDERER.render(COUNTER))
    assert "窗口现金" in text
    assert "交易流水号 —" in text
    assert "支付宝交易号" not in text
    assert "欧阳堃" in text
    assert "渝AD12345" in text
    assert "200.00 元" in text and "0.00 元" in text
    assert "贰佰元整" in text


def test_a_very_long_place_and_description_still_render_r_pay_8() -> None:
    """R-PAY-8: long free text wraps inside its cell (and onto a second page if need be)."""
    long = dataclasses.replace(
        ALIPAY,
        violation=dataclasses.replace(
            VIOLATION, place="重庆市" + "渝北区金开大道" * 40, description_zh="超速" * 400
        ),
    )
    text = _text(RENDERER.render(long)).replace("\n", "")
    assert "5001041234567890" in text
    assert "超速" * 50 in text


# -- the receipt's data and wording (pure) ------------------------------------------------
def test_receipt_rows_in_print_order_r_pay_8() -> None:
    """R-PAY-8: every field a 缴款凭证 shows, labelled in Chinese, amounts in yuan."""
    rows = dict(receipt_rows(ALIPAY))
    assert list(rows)[:2] == ["缴款编号", "处罚决定书编号"]
    assert rows["处罚决定书编号"] == "5001041234567890"
    assert rows["违法时间"] == "2026-10-01 09:02:03"
    assert (rows["罚款金额"], rows["滞纳金"], rows["缴款金额"]) == (
        "200.00 元",
        "6.00 元",
        "206.00 元",
    )
    assert rows["金额大写"] == "贰佰零陆元整"
    assert rows["缴款方式"] == "支付宝"
    assert rows["支付宝交易号"] == "2026112122001400001234567890"
    assert rows["缴款时间"] == "2026-11-21 14:03:05"
    assert rows["开具时间"] == "2026-11-21 14:03:09"
    assert (rows["当事人"], rows["号牌号码"]) == ("张*", "渝A***45")
    assert dict(receipt_rows(COUNTER))["交易流水号"] == "—"
    assert receipt_filename(ALIPAY) == "receipt-5001041234567890.pdf"


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(0, "0.00"), (5, "0.05"), (50, "0.50"), (20_000, "200.00"), (12_345, "123.45")],
)
def test_format_yuan(fen: int, yuan: str) -> None:
    assert format_yuan(fen) == yuan


def test_format_yuan_refuses_negative_and_non_integers() -> None:
    with pytest.raises(ValueError):
        format_yuan(-1)
    with pytest.raises(TypeError):
        format_yuan(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_yuan(True)


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角"),
        (100, "壹元整"),
        (105, "壹元零伍分"),
        (110, "壹元壹角"),
        (1_000, "壹拾元整"),
        (20_000, "贰佰元整"),
        (20_600, "贰佰零陆元整"),
        (32_000, "叁佰贰拾元整"),
        (100_500, "壹仟零伍元整"),
        (105_000, "壹仟零伍拾元整"),
        (1_000_500, "壹万零伍元整"),
        (10_000_500, "壹拾万零伍元整"),
        (100_001_000, "壹佰万零壹拾元整"),
        (10_500_000_000, "壹亿零伍佰万元整"),
        (123_456_789, "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
    ],
)
def test_amount_in_chinese_capitals_r_pay_8(fen: int, words: str) -> None:
    """R-PAY-8: the amount in 大写 as on a bank slip; one 零 for a run of zeros."""
    assert yuan_in_words(fen) == words


@given(st.integers(min_value=1, max_value=10**12 * 100 - 1))
def test_capitals_never_double_a_zero_nor_end_on_one(fen: int) -> None:
    words = yuan_in_words(fen)
    assert "零零" not in words
    assert not words.startswith("零")
    assert not words.endswith("零")
    assert words.endswith(("整", "角", "分"))


def test_capitals_refuse_out_of_range() -> None:
    with pytest.raises(ValueError):
        yuan_in_words(-1)
    with pytest.raises(ValueError):
        yuan_in_words(10**12 * 100)


def test_times_print_in_asia_shanghai() -> None:
    assert format_shanghai(datetime(2026, 11, 20, 16, 0, tzinfo=UTC)) == "2026-11-21 00:00:00"
    with pytest.raises(ValueError):
        format_shanghai(datetime(2026, 11, 20, 16, 0))


@pytest.mark.parametrize(
    "change",
    [
        {"amount_fen": 20_601},  # not fine + late fee
        {"late_fee_fen": -1, "amount_fen": 19_999},
        {"channel": "wechat"},
        {"paid_at": datetime(2026, 11, 21, 14, 3, 5)},  # naive
        {"issued_at": datetime(2026, 11, 21, 14, 3, 9)},
    ],
)
def test_an_inconsistent_receipt_is_refused_r_pay_8(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(ALIPAY, **change)


def test_a_naive_violation_time_is_refused() -> None:
    with pytest.raises(ValueError):
        ReceiptViolation("1345", "超速", datetime(2026, 10, 1, 9, 0), "重庆")
