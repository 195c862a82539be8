"""Face verification as the domain sees it (R-ADJ-8): whose face, for which handling step,
and what an adapter answered. The rules that make a passed verification usable (bound to one
person and one handling, expiring, single use) live here too; the adapters (Alipay, counter,
sandbox) sit behind ``cqadjudication.ports.FaceVerifier``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: "owner" consents to points on another's licence (R-ADJ-4); "handler" is the person handling.
Step = Literal["owner", "handler"]
#: What a face adapter says about a started verification.
FaceResult = Literal["passed", "failed", "pending"]


@dataclass(frozen=True)
class FaceSubject:
    """The named person whose face is checked (the adapter needs the real-name identity)."""

    person_id: str
    name: str
    id_number: str


@dataclass(frozen=True)
class CertifyStart:
    """A started verification: the adapter's id for it and where the person completes it."""

    certify_id: str
    url: str
