"""R-Q-3: what the online-handling hint of a decided violation says.

A handled violation (its decision awaits payment) or a paid one has nothing left to handle
online, so its answer comes from its record alone, the same for every caller: refused,
with the dispute first when there is one (``DISPUTED_COUNTER_ONLY``, route ``counter``),
then ``ALREADY_DECIDED`` (route ``payment``) or ``ALREADY_PAID`` (no route). The handling
rules (licence, points, R-X-2) do not apply to it.

Adjudication's engine answers decided violations with this
(``cqadjudication.domain.eligibility.decided_assessment``), and the query service answers
them from its read model without asking adjudication (``cqquery.domain.results``): the
status and the dispute the hint speaks of are then the ones shown beside it, and a read
of a handled or paid violation costs no call to adjudication.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon import errors
from cqcommon.errors import ErrorSpec

DECIDED_STATUSES = frozenset({"handled_unpaid", "paid"})


@dataclass(frozen=True)
class DecidedAnswer:
    """A decided violation's refusal: where to go (``counter``, ``payment`` or ``""``) and
    every reason, in order."""

    route: str
    reasons: tuple[ErrorSpec, ...]


def status_is_decided(status: str) -> bool:
    """Handled (a decision exists) or paid."""
    return status in DECIDED_STATUSES


def decided_answer(status: str, *, disputed: bool) -> DecidedAnswer | None:
    """The answer for a violation in ``status``; None while it is not decided (then the
    handling rules decide, and only adjudication can)."""
    if not status_is_decided(status):
        return None
    unpaid = status == "handled_unpaid"
    state = errors.ALREADY_DECIDED if unpaid else errors.ALREADY_PAID
    if disputed:
        return DecidedAnswer("counter", (errors.DISPUTED_COUNTER_ONLY, state))
    return DecidedAnswer("payment" if unpaid else "", (state,))
