"""Whether a violation can be handled online, as far as the record itself decides
(R-Q-3 asks it; DOMAIN.md "Self-service handling", R-ADJ-9).

Only a **non-site**, **undisputed** violation in status ``unhandled``, of the **simple
procedure** with a fine of **at most 200 yuan**, can be handled online. Everything else is
refused here with a route the user can take and a reason in Chinese and English:

* disputed (R-ADJ-9) -> the counter; checked first, because a dispute also blocks payment;
* decided and unpaid -> pay it (route ``payment``); already paid -> nothing left to do;
* on-site (an officer's ticket always carries a decision) -> the counter;
* needs the general procedure (procedure ``general`` or fine over 200 yuan) -> the counter,
  which issues the decision (``POST /internal/v1/violations/{id}/handle``).

What remains depends on the person asking (R-ADJ-1..6: own licence/vehicle, licence class,
points after handling, points sync guard), which comes with the handling issue; until then
it is ``unknown`` with reason ``ELIGIBILITY_NOT_AVAILABLE`` (the code the query service
already uses for "cannot be determined yet"), never a guess of "allowed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cqadjudication.domain.violations import SIMPLE_PROCEDURE_MAX_FINE_FEN, Violation

Availability = Literal["allowed", "refused", "unknown"]
Route = Literal["", "payment", "counter"]


@dataclass(frozen=True)
class Reason:
    """A stable reason code and the sentence shown to the user."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class Eligibility:
    availability: Availability
    route: Route
    reason: Reason


DISPUTED_COUNTER_ONLY = Reason(
    "DISPUTED_COUNTER_ONLY",
    "您对该违法事实有异议，不能在线处理，请携带相关材料到交警窗口办理。",
    "This violation is disputed and cannot be handled online; please visit a police "
    "counter with your documents.",
)
ALREADY_DECIDED = Reason(
    "ALREADY_DECIDED",
    "该违法已作出处罚决定，无需再处理，请按决定书缴纳罚款。",
    "A penalty decision has already been issued for this violation; it only needs to be paid.",
)
ALREADY_PAID = Reason(
    "ALREADY_PAID",
    "该违法已处理并缴款完毕。",
    "This violation has been decided and paid; nothing is left to do.",
)
ON_SITE_NOT_ONLINE = Reason(
    "ON_SITE_NOT_ONLINE",
    "现场处罚的违法不能在线处理，请到交警窗口办理。",
    "On-site violations cannot be handled online; please visit a police counter.",
)
GENERAL_PROCEDURE_COUNTER_ONLY = Reason(
    "GENERAL_PROCEDURE_COUNTER_ONLY",
    "该违法需适用一般程序（如罚款超过 200 元），不能在线处理，请到交警窗口办理。",
    "This violation needs the general procedure (e.g. a fine over 200 yuan) and cannot be "
    "handled online; please visit a police counter.",
)
ELIGIBILITY_NOT_AVAILABLE = Reason(
    "ELIGIBILITY_NOT_AVAILABLE",
    "暂时无法判断能否在线处理，请稍后再试或到交警窗口办理。",
    "Whether this can be handled online cannot be determined yet; "
    "try again later or visit a police counter.",
)

#: The answer for an id adjudication does not know: the same as for a record whose
#: record-level rules pass, so the answer never tells an existing id from a made-up one.
NOT_DETERMINED = Eligibility("unknown", "", ELIGIBILITY_NOT_AVAILABLE)


def needs_general_procedure(v: Violation) -> bool:
    """DOMAIN.md: fines over 200 yuan (inclusive limit) are beyond the simple procedure."""
    return v.procedure == "general" or v.fine_fen > SIMPLE_PROCEDURE_MAX_FINE_FEN


def record_eligibility(v: Violation) -> Eligibility:
    """The record-level answer for ``v`` (see the module docstring for the order)."""
    if v.disputed:
        return Eligibility("refused", "counter", DISPUTED_COUNTER_ONLY)
    if v.status == "handled_unpaid":
        return Eligibility("refused", "payment", ALREADY_DECIDED)
    if v.status == "paid":
        return Eligibility("refused", "", ALREADY_PAID)
    if v.source == "on_site":
        return Eligibility("refused", "counter", ON_SITE_NOT_ONLINE)
    if needs_general_procedure(v):
        return Eligibility("refused", "counter", GENERAL_PROCEDURE_COUNTER_ONLY)
    return NOT_DETERMINED
