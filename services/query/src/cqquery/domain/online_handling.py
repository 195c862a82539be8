"""R-Q-3: the online-handling hint's reasons, and the hint when adjudication cannot give one.

Whether a caller may handle a violation online is adjudication's rule (R-ADJ-*); the
query service only relays its answer, every refusal reason included. When adjudication
cannot answer, the hint says so ("unknown") with a stable reason code, instead of
guessing or failing the read.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon import errors


@dataclass(frozen=True)
class Reason:
    """One reason of a hint: a stable code and its Chinese and English sentence."""

    code: str
    zh: str
    en: str


#: adjudication does not offer the eligibility question (yet): the table's own texts
ELIGIBILITY_NOT_AVAILABLE = Reason(
    errors.ELIGIBILITY_NOT_AVAILABLE.code,
    errors.ELIGIBILITY_NOT_AVAILABLE.message_zh,
    errors.ELIGIBILITY_NOT_AVAILABLE.message_en,
)
#: adjudication did not answer in time or is down
ELIGIBILITY_UNAVAILABLE = Reason(
    "ELIGIBILITY_UNAVAILABLE",
    "处理资格服务暂时不可用，请稍后再试。",
    "The eligibility service is unavailable; try again later.",
)
