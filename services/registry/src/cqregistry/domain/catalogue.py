"""The violation-code catalogue the sandbox and synthetic data use, and the procedure rule
for a fine. Points always equal the code's second digit (R-ADJ-3)."""

from __future__ import annotations

import functools
from typing import Final

from cqcommon.identifiers import points_of_code

from cqregistry.domain.model import Procedure, ViolationCode

# (code, description, fine_min_fen, fine_max_fen); points = the second digit.
_CATALOGUE: Final[tuple[tuple[str, str, int, int], ...]] = (
    ("1019", "机动车违反规定使用专用车道", 10000, 20000),
    ("1020", "在禁止鸣喇叭的区域或者路段鸣喇叭", 5000, 10000),
    ("1034", "驾驶机动车上道路行驶，未随车携带行驶证", 5000, 20000),
    ("1035", "驾驶机动车上道路行驶，未随车携带驾驶证", 5000, 20000),
    ("1039", "机动车违反规定停放、临时停车，驾驶人不在现场，妨碍其他车辆、行人通行", 10000, 20000),
    ("1042", "机动车违反规定停放、临时停车，驾驶人虽在现场但拒绝立即驶离", 10000, 20000),
    ("10390", "机动车在人行道上违法停车，驾驶人不在现场", 10000, 20000),
    ("10392", "机动车在消防通道上违法停车，驾驶人不在现场", 20000, 20000),
    ("1101", "驾驶机动车不按规定使用灯光", 5000, 20000),
    ("1116", "驾驶机动车不按规定会车", 5000, 20000),
    ("1120", "驾驶机动车时驾驶人未按规定使用安全带", 5000, 20000),
    ("1124", "驾驶机动车时有妨碍安全驾驶的行为", 5000, 20000),
    ("11081", "驾驶摩托车未按规定戴安全头盔", 2000, 5000),
    ("1208", "驾驶机动车不按所需行进方向驶入导向车道", 10000, 10000),
    ("1211", "驾驶机动车违反规定超车", 10000, 20000),
    ("1230", "驾驶机动车时拨打、接听手持电话", 5000, 20000),
    ("1240", "驾驶机动车在高速公路上不按规定车道行驶", 20000, 20000),
    ("12080", "驾驶机动车在有灯控路口不按导向车道行驶", 10000, 10000),
    ("1301", "驾驶机动车逆向行驶", 10000, 20000),
    ("1344", "驾驶机动车违反禁令标志指示", 10000, 20000),
    ("1345", "驾驶机动车违反禁止标线指示", 10000, 20000),
    ("1352", "驾驶机动车行驶超过规定时速未达20%", 5000, 20000),
    ("1357", "驾驶机动车行经人行横道，不按规定减速、停车、避让行人", 10000, 20000),
    ("13010", "驾驶机动车在单行道上逆向行驶", 10000, 20000),
    ("13440", "驾驶机动车违反禁止左转弯标志指示", 10000, 20000),
    ("13451", "驾驶机动车违反禁止掉头标线指示", 10000, 20000),
    ("1603", "驾驶机动车在高速公路上倒车、逆行、穿越中央分隔带掉头", 20000, 200000),
    ("1610", "驾驶机动车在高速公路上违法占用应急车道行驶", 20000, 20000),
    ("1625", "驾驶机动车违反道路交通信号灯通行（闯红灯）", 20000, 20000),
    ("1636", "驾驶机动车行驶超过规定时速20%以上未达到50%", 20000, 200000),
    ("16250", "驾驶机动车在有灯控路口违反转向信号灯指示通行", 20000, 20000),
    ("16360", "驾驶机动车在城市快速路上超过规定时速20%以上未达到50%", 20000, 200000),
    ("1903", "未悬挂机动车号牌或者故意遮挡、污损机动车号牌", 20000, 200000),
    ("1904", "驾驶与准驾车型不符的机动车", 20000, 200000),
    ("19010", "驾驶机动车在高速公路或者城市快速路上违法停车", 20000, 200000),
)


@functools.cache
def violation_code_catalogue() -> tuple[ViolationCode, ...]:
    """The violation codes used by the sandbox and synthetic data (35 codes, 4 and 5 digits)."""
    return tuple(
        ViolationCode(code, text, points_of_code(code), lo, hi) for code, text, lo, hi in _CATALOGUE
    )


@functools.cache
def violation_code(code: str) -> ViolationCode:
    """The catalogue entry for ``code``; ``KeyError`` if it is not catalogued."""
    return {c.code: c for c in violation_code_catalogue()}[code]


def procedure_for_fine(fine_fen: int) -> Procedure:
    """Simple procedure up to 200 yuan (inclusive), general above."""
    return Procedure.SIMPLE if fine_fen <= 20000 else Procedure.GENERAL
