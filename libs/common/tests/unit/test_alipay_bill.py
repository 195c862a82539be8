"""The trade bill parser (``cqcommon.alipay.parse_trade_bill``) on files shaped like Alipay's:
a zip whose member names are GBK without the UTF-8 flag, GBK CSV with ``#`` lines, cells
padded with tabs, refunds as negative rows. No I/O beyond memory."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from cqcommon.alipay import SHANGHAI, parse_trade_bill, summarize_trade_bill

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
    "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"
    "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
    "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)


def _row(trade_no: str, out_no: str, kind: str, finished: str, amount: str, req: str = "") -> str:
    cells = [trade_no, out_no, kind, '"罚款,渝A12345"', "2030-01-02 08:00:00", finished]
    cells += ["", "", "", "", "cq***@example.com", amount, amount, "0.00", "0.00", "0.00"]
    cells += ["0.00", "0.00", "", "0.00", "0.00", req, "0.00", "0.00", ""]
    return ",".join(c + "\t" if c and not c.startswith('"') else c for c in cells)


DETAIL = "\r\n".join(
    [
        "#支付宝业务明细查询",
        "#账号：[20880000000099990156]",
        "#起始日期：[2030年01月02日 00:00:00]   终止日期：[2030年01月03日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------",
        HEADER,
        _row("2030010222001", "P1", "交易", "2030-01-02 09:00:00", "30.00"),
        _row("2030010222002", "P2", "交易", "2030-01-02 23:59:59", "200.00"),
        _row("2030010222002", "P2", "退款", "2030-01-02 23:59:59", "-50.00", "R1"),
        _row("2029123122009", "P0", "退款", "2030-01-02 10:00:00", "-1.50", "R9"),
        "#-----------------------------------------业务明细列表结束------------",
        "#交易合计：2笔，商家实收共230.00元，商家优惠共0.00元",
        "#导出时间：[2030年01月03日 10:00:00]",
        "",
    ]
)


class _GbkNamed(zipfile.ZipInfo):
    """What Alipay's zips hold: the name in GBK bytes without the UTF-8 flag (zipfile itself
    would write UTF-8 and set the flag), so a reader sees it decoded as cp437."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - zipfile's name
        return self.filename.encode("gbk"), self.flag_bits


def _zip(members: dict[str, str], *, gbk_names: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            info = _GbkNamed(name) if gbk_names else zipfile.ZipInfo(name)
            archive.writestr(info, text.encode("gbk"))
    return buffer.getvalue()


def _bill(detail: str = DETAIL) -> bytes:
    return _zip(
        {
            "20880000000099990156_20300102_业务明细.csv": detail,
            "20880000000099990156_20300102_业务明细(汇总).csv": "#支付宝业务汇总查询\r\n合计,2\r\n",
        }
    )


def test_rows_of_a_bill_shaped_like_alipays() -> None:
    rows = parse_trade_bill(_bill())
    assert [(r.trade_no, r.out_trade_no, r.kind, r.amount_fen, r.out_request_no) for r in rows] == [
        ("2030010222001", "P1", "交易", 3000, None),
        ("2030010222002", "P2", "交易", 20000, None),
        ("2030010222002", "P2", "退款", -5000, "R1"),
        ("2029123122009", "P0", "退款", -150, "R9"),
    ]
    assert rows[1].finished_at == datetime(2030, 1, 2, 23, 59, 59, tzinfo=SHANGHAI)
    assert rows[2].is_refund and not rows[0].is_refund


def test_summary_folds_refunds_into_the_days_paid_trades() -> None:
    lines = summarize_trade_bill(parse_trade_bill(_bill()))
    # P0 was paid on another day: its refund row has no line in this day's statement.
    assert [(x.out_trade_no, x.total_amount_fen, x.refunded_fen) for x in lines] == [
        ("P1", 3000, 0),
        ("P2", 20000, 5000),
    ]
    assert lines[0].paid_at == datetime(2030, 1, 2, 9, 0, tzinfo=SHANGHAI)


def test_an_empty_day_is_an_empty_list() -> None:
    detail = "\r\n".join(["#支付宝业务明细查询", HEADER, "#交易合计：0笔", ""])
    assert parse_trade_bill(_bill(detail)) == []


def test_member_names_are_read_in_gbk_and_in_utf8() -> None:
    with zipfile.ZipFile(io.BytesIO(_bill())) as archive:
        assert not archive.infolist()[0].flag_bits & 0x800  # really written the GBK way
    data = _zip({"x_业务明细.csv": DETAIL}, gbk_names=False)
    assert len(parse_trade_bill(data)) == 4


@pytest.mark.parametrize(
    "data",
    [
        b"not a zip",
        _zip({"a_业务明细.csv": DETAIL, "b_业务明细.csv": DETAIL}),  # which one?
        _zip({"readme.txt": "hello"}),
        _bill("#only comments\r\n"),
        _bill(DETAIL.replace("订单金额（元）", "金额")),  # a needed column is missing
        _bill(DETAIL.replace("30.00", "3O.00")),
        _bill(DETAIL.replace("-50.00", "--50.00")),
        _bill(HEADER + "\r\n2030,P1,交易\r\n"),  # a short row
    ],
)
def test_files_that_are_not_a_bill_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_trade_bill(data)


def test_a_payment_row_without_completion_time_is_malformed() -> None:
    rows = parse_trade_bill(_bill(DETAIL.replace("2030-01-02 09:00:00", "")))
    with pytest.raises(ValueError):
        summarize_trade_bill(rows)
