"""R-PAY-8: the receipt (缴款凭证) of a paid decision, and what it says, as pure data.

A ``Receipt`` holds everything the printed receipt shows; the caller (the receipt use
case) fills it from the payment and the payable decision, deciding beforehand whether
the payer sees the party's name and plate in full or masked (R-Q-4, paying someone
else's fine is allowed but shows masked data only). ``receipt_rows`` turns it into the
labelled lines in print order, with amounts in yuan (and in Chinese capitals, as on a
bank slip) and times in Asia/Shanghai, so the PDF adapter
(``cqpayment.adapters.receipt_pdf``) only lays text out and every word on the page is
testable without a PDF.

No I/O here: the same receipt always gives the same rows, so a receipt can be
regenerated identically from the stored payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cqcommon.clock import SHANGHAI

#: Who issues the receipt and what it is, its two title lines.
ISSUER_ZH: Final = "重庆市公安局交通管理局"
TITLE_ZH: Final = "交通违法罚款缴款凭证"

#: The payment channels and how the receipt names them.
CHANNEL_LABELS_ZH: Final[dict[str, str]] = {
    "alipay": "支付宝",
    "counter_cash": "窗口现金",
    "counter_card": "窗口刷卡",
}

#: What an empty optional value (a counter payment's provider trade number) prints as.
NOT_APPLICABLE: Final = "—"

_DIGITS_ZH: Final = "零壹贰叁肆伍陆柒捌玖"
_PLACES_ZH: Final = ("", "拾", "佰", "仟")
_GROUPS_ZH: Final = ("", "万", "亿")
#: Below 1 万亿 yuan: the three groups above suffice, and no fine comes near it.
_MAX_WORDS_FEN: Final = 10**12 * 100


def _aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class ReceiptViolation:
    """The violation the paid decision punished, as printed on the receipt."""

    code: str
    description_zh: str
    occurred_at: datetime
    place: str

    def __post_init__(self) -> None:
        _aware(self.occurred_at, "occurred_at")


@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything a 缴款凭证 shows (R-PAY-8).

    ``plate_number`` and ``party_name`` are printed as given: the caller masks them
    (``cqcommon.masking``) when the payer is not the party. Amounts are whole fen and
    ``amount_fen`` is what was charged, fine plus late fee as fixed when the payment was
    created (R-PAY-2). ``provider_trade_no`` is empty for counter payments.
    ``issued_at`` is also the PDF's creation date, so regenerating a receipt from the
    same data gives the same bytes.
    """

    payment_id: str
    decision_no: str
    violation: ReceiptViolation
    plate_number: str
    party_name: str
    fine_fen: int
    late_fee_fen: int
    amount_fen: int
    paid_at: datetime
    channel: str
    provider_trade_no: str
    out_trade_no: str
    issued_at: datetime

    def __post_init__(self) -> None:
        if self.fine_fen < 0 or self.late_fee_fen < 0:
            raise ValueError("fine and late fee must not be negative")
        if self.amount_fen != self.fine_fen + self.late_fee_fen:
            raise ValueError("amount_fen must be fine_fen + late_fee_fen")
        if self.channel not in CHANNEL_LABELS_ZH:
            raise ValueError(f"unknown payment channel {self.channel!r}")
        _aware(self.paid_at, "paid_at")
        _aware(self.issued_at, "issued_at")


def format_yuan(fen: int) -> str:
    """``12345`` → ``"123.45"``: whole fen to yuan with two decimals.

    Integer arithmetic only (a float would print some amounts wrongly). The same form as
    ``cqcommon.alipay.fen_to_yuan``, which the domain cannot import: that module brings
    httpx, and the domain is kept free of I/O libraries (import-linter).
    """
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amount must be integer fen")
    if fen < 0:
        raise ValueError("amount must not be negative")
    return f"{fen // 100}.{fen % 100:02d}"


def _four_digits_in_words(group: int) -> str:
    """1..9999 in capitals, a zero inside read once: 1005 → 壹仟零伍, 1050 → 壹仟零伍拾."""
    text = ""
    zero_pending = False
    for place in (3, 2, 1, 0):
        digit = group // 10**place % 10
        if digit == 0:
            zero_pending = bool(text)
            continue
        if zero_pending:
            text += "零"
            zero_pending = False
        text += _DIGITS_ZH[digit] + _PLACES_ZH[place]
    return text


def yuan_in_words(fen: int) -> str:
    """The amount in Chinese financial capitals (大写), as banks write it on slips.

    ``20000`` → ``贰佰元整``, ``20600`` → ``贰佰零陆元整``, ``105`` → ``壹元零伍分``,
    ``50`` → ``伍角``, ``0`` → ``零元整``. A zero between non-zero digits is read once
    (``壹仟零伍元``); ``整`` closes an amount without 角 and 分.
    """
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amount must be integer fen")
    if not 0 <= fen < _MAX_WORDS_FEN:
        raise ValueError("amount out of range for capitals")
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    if fen == 0:
        return "零元整"
    words = ""
    zero_pending = False
    for index in range(len(_GROUPS_ZH) - 1, -1, -1):
        group = yuan // 10_000**index % 10_000
        if group == 0:
            zero_pending = bool(words)
            continue
        # a group under 1000 after a higher one starts with a zero: 1_0005 → 壹万零伍
        if zero_pending or (words and group < 1_000):
            words += "零"
            zero_pending = False
        words += _four_digits_in_words(group) + _GROUPS_ZH[index]
    if words:
        words += "元"
    if jiao == 0 and cents == 0:
        return words + "整"
    if jiao:
        words += _DIGITS_ZH[jiao] + "角"
    elif words:
        words += "零"  # 壹元零伍分: the missing 角 is read as a zero
    if cents:
        words += _DIGITS_ZH[cents] + "分"
    return words


def format_shanghai(at: datetime) -> str:
    """An aware instant as Asia/Shanghai wall-clock time, ``2026-11-21 14:03:05``."""
    _aware(at, "at")
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def receipt_rows(receipt: Receipt) -> tuple[tuple[str, str], ...]:
    """The receipt's labelled lines in print order: (Chinese label, value)."""
    violation = receipt.violation
    trade_no_label = "支付宝交易号" if receipt.channel == "alipay" else "交易流水号"
    return (
        ("缴款编号", receipt.payment_id),
        ("处罚决定书编号", receipt.decision_no),
        ("当事人", receipt.party_name),
        ("号牌号码", receipt.plate_number),
        ("违法时间", format_shanghai(violation.occurred_at)),
        ("违法地点", violation.place),
        ("违法代码", violation.code),
        ("违法行为", violation.description_zh),
        ("罚款金额", f"{format_yuan(receipt.fine_fen)} 元"),
        ("滞纳金", f"{format_yuan(receipt.late_fee_fen)} 元"),
        ("缴款金额", f"{format_yuan(receipt.amount_fen)} 元"),
        ("金额大写", yuan_in_words(receipt.amount_fen)),
        ("缴款方式", CHANNEL_LABELS_ZH[receipt.channel]),
        ("缴款时间", format_shanghai(receipt.paid_at)),
        ("商户订单号", receipt.out_trade_no),
        (trade_no_label, receipt.provider_trade_no or NOT_APPLICABLE),
        ("开具时间", format_shanghai(receipt.issued_at)),
    )


def receipt_filename(receipt: Receipt) -> str:
    """The download name, ASCII only so every client keeps it: ``receipt-<decision>.pdf``."""
    return f"receipt-{receipt.decision_no}.pdf"
