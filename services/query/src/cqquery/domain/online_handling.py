"""R-Q-3: the online-handling hint's reasons, and the hint when adjudication cannot give one.

Whether a caller may handle a violation online is adjudication's rule (R-ADJ-*); the
query service relays its answer, every refusal reason included. A handled or paid
violation's answer is its record's alone and the same for everyone (``cqcommon.decided``,
which adjudication answers with too): the detail gives it from the row it shows
(``OnlineHandlingHint.decided``). When adjudication cannot answer, the hint says so
("unknown") with a stable reason code, instead of guessing or failing the read.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon import errors
from cqcommon.errors import ErrorSpec


@dataclass(frozen=True)
class Reason:
    """One reason of a hint: a stable code and its Chinese and English sentence."""

    code: str
    zh: str
    en: str

    @classmethod
    def of(cls, spec: ErrorSpec) -> Reason:
        """The reason for an error-table entry: its code and messages (the texts live only
        in ``cqcommon.errors``)."""
        return cls(spec.code, spec.message_zh, spec.message_en)


#: adjudication does not offer the eligibility question (yet)
ELIGIBILITY_NOT_AVAILABLE = Reason.of(errors.ELIGIBILITY_NOT_AVAILABLE)
#: adjudication did not answer in time or is down
ELIGIBILITY_UNAVAILABLE = Reason.of(errors.ELIGIBILITY_UNAVAILABLE)
