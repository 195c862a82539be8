"""Decision notices (处罚决定书 / 处理通知书, R-ADJ-7, R-JOB-3): what the printable notice of a
penalty decision says, pure.

A notice names the decision (number, date), the party (name; the ID number masked as in
R-Q-4, ``5001**********1234``: a notice may be printed at a counter, handed over or
lost, so the full number never appears in it), the vehicle, the violation (time, place,
code, description), the fine and points, the due date (decision date + 15 days, R-PAY-2),
how to pay (the Alipay mini-program or a counter; from the 16th day a late fee of 3 % of
the fine per day, capped at the fine) and the authority. Its wording follows the
公安交通管理简易程序处罚决定书 (simple procedure) or 行政处罚决定书 (general procedure).

The notice depends only on these facts: the same decision gives the same text, and the
document's creation instant is the decision date's midnight in Asia/Shanghai (never the
time it was printed), so the PDF bytes repeat too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Final

from cqcommon.clock import SHANGHAI
from cqcommon.fees import DUE_AFTER_DAYS, LATE_FEE_PERCENT_PER_DAY, due_date
from cqcommon.identifiers import mask_id_number

AUTHORITY_ZH: Final = "重庆市公安局交通管理局"
TITLE_SIMPLE_ZH: Final = "公安交通管理简易程序处罚决定书"
TITLE_GENERAL_ZH: Final = "公安交通管理行政处罚决定书"
#: What the document calls itself in its subject line and file name.
NOTICE_ZH: Final = "处理通知书"

_PLATE_TYPES: Final = {
    "01": "大型汽车",
    "02": "小型汽车",
    "07": "普通摩托车",
    "51": "大型新能源汽车",
    "52": "小型新能源汽车",
}


@dataclass(frozen=True)
class NoticeFacts:
    """Everything a notice prints, read from the decided violation and the registry copy."""

    decision_no: str
    decision_date: date
    violation_id: str
    procedure: str
    party_name: str
    #: as the registry has it; only its masked form is printed
    party_id_number: str
    plate_type: str
    plate_number: str
    violation_code: str
    description_zh: str
    occurred_at: datetime
    place: str
    fine_fen: int
    points: int
    authority_code: str

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")


def format_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d} 元"


def title(facts: NoticeFacts) -> str:
    return TITLE_SIMPLE_ZH if facts.procedure == "simple" else TITLE_GENERAL_ZH


def created_at(facts: NoticeFacts) -> datetime:
    """The document's creation instant: the decision date, 00:00 Asia/Shanghai."""
    return datetime.combine(facts.decision_date, time(), SHANGHAI)


def filename(decision_no: str) -> str:
    return f"{NOTICE_ZH}-{decision_no}.pdf"


def notice_rows(facts: NoticeFacts) -> tuple[tuple[str, str], ...]:
    """The notice's table, in print order (label, value)."""
    f = facts
    plate_type = _PLATE_TYPES.get(f.plate_type, f.plate_type)
    occurred = f.occurred_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return (
        ("决定书编号", f.decision_no),
        ("决定日期", f.decision_date.isoformat()),
        ("被处罚人", f.party_name),
        ("身份证明号码", mask_id_number(f.party_id_number)),
        ("机动车号牌", f"{f.plate_number}（{plate_type}）"),
        ("违法时间", occurred),
        ("违法地点", f.place),
        ("违法代码", f.violation_code),
        ("违法行为", f.description_zh),
        ("罚款金额", format_yuan(f.fine_fen)),
        ("记分", f"{f.points} 分"),
        ("缴款期限", f"{due_date(f.decision_date).isoformat()} 前（含当日）"),
    )


def notice_paragraphs(facts: NoticeFacts) -> tuple[str, ...]:
    """The body under the table: the decision, how to pay, the late fee, the remedies."""
    due = due_date(facts.decision_date).isoformat()
    return (
        f"被处罚人的上述违法行为事实清楚，依据《中华人民共和国道路交通安全法》及相关规定，"
        f"决定处以罚款 {format_yuan(facts.fine_fen)}，记 {facts.points} 分。",
        f"请于决定之日起 {DUE_AFTER_DAYS} 日内（{due} 前）缴纳罚款：可通过支付宝"
        "“重庆交警”小程序凭决定书编号缴款，或到任一交警窗口缴款。",
        f"逾期不缴纳的，自第 {DUE_AFTER_DAYS + 1} 日起每日按罚款数额的 "
        f"{LATE_FEE_PERCENT_PER_DAY}% 加处罚款，加处罚款总额不超过罚款数额。",
        "被处罚人对本决定不服的，可以在收到本决定书之日起六十日内依法申请行政复议，"
        "或者在六个月内依法提起行政诉讼。",
    )


def authority_lines(facts: NoticeFacts) -> tuple[str, ...]:
    return (
        f"处罚机关：{AUTHORITY_ZH}（机关代码 {facts.authority_code}）",
        f"{facts.decision_date.year} 年 {facts.decision_date.month} 月 "
        f"{facts.decision_date.day} 日",
    )
