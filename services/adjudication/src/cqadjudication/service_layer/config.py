"""The configurable numbers the handling use cases read, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from cqadjudication.domain.eligibility import EligibilityRules, RulesSettings


class HandlingSettings(RulesSettings, Protocol):
    @property
    def face_verification_ttl_s(self) -> int: ...
    @property
    def decision_authority_code(self) -> str: ...


@dataclass(frozen=True)
class HandlingConfig:
    rules: EligibilityRules
    #: R-ADJ-8: how long a passed face verification stays usable
    face_ttl: timedelta
    #: R-ADJ-7: the 6-digit division code prefixing decision numbers issued here
    authority_code: str

    @classmethod
    def from_settings(cls, s: HandlingSettings) -> HandlingConfig:
        return cls(
            rules=EligibilityRules.from_settings(s),
            face_ttl=timedelta(seconds=s.face_verification_ttl_s),
            authority_code=s.decision_authority_code,
        )
