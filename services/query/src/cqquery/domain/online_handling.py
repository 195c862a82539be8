"""R-Q-3: the online-handling hint when adjudication cannot give one.

Whether a caller may handle a violation online is adjudication's rule (R-ADJ-*); the
query service only relays its answer. When adjudication cannot answer, the hint says
so ("unknown") with a stable reason code, instead of guessing or failing the read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnknownReason:
    code: str
    zh: str
    en: str


#: adjudication does not offer the eligibility question (yet)
ELIGIBILITY_NOT_AVAILABLE = UnknownReason(
    "ELIGIBILITY_NOT_AVAILABLE",
    "暂时无法判断能否在线处理，请稍后再试或到交警窗口办理。",
    "Whether this can be handled online cannot be determined yet; "
    "try again later or visit a police counter.",
)
#: adjudication did not answer in time or is down
ELIGIBILITY_UNAVAILABLE = UnknownReason(
    "ELIGIBILITY_UNAVAILABLE",
    "处理资格服务暂时不可用，请稍后再试。",
    "The eligibility service is unavailable; try again later.",
)
