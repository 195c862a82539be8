"""The ``counter`` face verifier (R-ADJ-8): a clerk confirmed the person's identity at the
desk (ID card in hand), so there is nothing to ask a provider.

Used only by counter handling (``HandleAtCounter``, a staff-only use case): ``start``
returns a certify id that is ``passed`` at once. The id is ``ctr`` + 29 hex digits of
SHA-256 of our ``reference`` (nothing personal); ``result`` needs no state and refuses
anything else. What makes a counter verification trustworthy is who can start one (staff,
audited by the gateway), not the id; the URL ``counter://desk/<certify_id>`` is only a
label.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from cqcommon.errors import FACE_CERTIFY_ID_INVALID, DomainError

from cqadjudication.domain.verification import CertifyStart, FaceResult, FaceSubject

URL_PREFIX: Final = "counter://desk/"
_ID_RE: Final = re.compile(r"ctr[0-9a-f]{29}")


class CounterFaceVerifier:
    """``FaceVerifier`` for identity checked in person by a clerk."""

    name = "counter"

    async def start(self, subject: FaceSubject, *, purpose: str, reference: str) -> CertifyStart:
        if not reference:
            raise ValueError("a verification needs our reference")
        if not subject.person_id:
            raise ValueError("a counter verification names the person the clerk checked")
        certify_id = "ctr" + hashlib.sha256(reference.encode()).hexdigest()[:29]
        return CertifyStart(certify_id=certify_id, url=URL_PREFIX + certify_id)

    async def result(self, certify_id: str) -> FaceResult:
        if _ID_RE.fullmatch(certify_id) is None:
            raise DomainError(FACE_CERTIFY_ID_INVALID)
        return "passed"
