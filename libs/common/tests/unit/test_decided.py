"""R-Q-3: a decided violation's online-handling answer (cqcommon.decided), the one
adjudication gives and the query service gives from its read model."""

from __future__ import annotations

import pytest
from cqcommon.decided import decided_answer


@pytest.mark.parametrize("status", ["unhandled", "recorded", ""])
def test_an_open_violation_has_no_decided_answer(status: str) -> None:
    assert decided_answer(status, disputed=False) is None
    assert decided_answer(status, disputed=True) is None


@pytest.mark.parametrize(
    ("status", "disputed", "route", "codes"),
    [
        ("handled_unpaid", False, "payment", ["ALREADY_DECIDED"]),
        ("paid", False, "", ["ALREADY_PAID"]),
        ("handled_unpaid", True, "counter", ["DISPUTED_COUNTER_ONLY", "ALREADY_DECIDED"]),
        ("paid", True, "counter", ["DISPUTED_COUNTER_ONLY", "ALREADY_PAID"]),
    ],
)
def test_r_q_3_a_decided_violation_is_refused_with_its_state_and_dispute(
    status: str, disputed: bool, route: str, codes: list[str]
) -> None:
    answer = decided_answer(status, disputed=disputed)
    assert answer is not None
    assert answer.route == route
    assert [spec.code for spec in answer.reasons] == codes
    assert all(spec.message_zh and spec.message_en for spec in answer.reasons)
