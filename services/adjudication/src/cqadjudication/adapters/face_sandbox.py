"""The ``sandbox`` face verifier (R-ADJ-8, R-SBX-1): deterministic, no provider, for demos
and tests. Nothing leaves the process.

The outcome depends only on the person's name, so a demo can show every answer:

* a name containing ``失败`` ("fail"), e.g. ``张失败``  -> ``failed``;
* a name containing ``待定`` ("undecided")            -> ``pending`` (never finishes);
* any other name (every SANDBOX.md persona, all generated people) -> ``passed``.

The certify id is ``sbx`` + the outcome's letter (``p``/``f``/``w``) + 28 hex digits of
SHA-256 of our ``reference`` (a random verification id, nothing personal): the same start
gives the same id, and ``result`` needs no state, so any process answers it. The URL is
``sandbox://face/<certify_id>`` (nothing to open: the check "happens" at once). Trust in a
sandbox id comes from where it is stored (the verification row of one handling), as for
every adapter; sandbox mode never runs against real people.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from cqcommon.errors import FACE_CERTIFY_ID_INVALID, DomainError

from cqadjudication.domain.verification import CertifyStart, FaceResult, FaceSubject

FAIL_MARKER: Final = "失败"
PENDING_MARKER: Final = "待定"
URL_PREFIX: Final = "sandbox://face/"

_LETTER: Final[dict[FaceResult, str]] = {"passed": "p", "failed": "f", "pending": "w"}
_BY_LETTER: Final[dict[str, FaceResult]] = {letter: r for r, letter in _LETTER.items()}
_ID_RE: Final = re.compile(r"sbx([pfw])[0-9a-f]{28}")


def sandbox_outcome(subject: FaceSubject) -> FaceResult:
    """What the sandbox answers for ``subject`` (see the module docstring)."""
    if FAIL_MARKER in subject.name:
        return "failed"
    if PENDING_MARKER in subject.name:
        return "pending"
    return "passed"


class SandboxFaceVerifier:
    """``FaceVerifier`` for sandbox mode: the outcome is decided by the name at start."""

    name = "sandbox"

    async def start(self, subject: FaceSubject, *, purpose: str, reference: str) -> CertifyStart:
        if not reference:
            raise ValueError("a verification needs our reference")
        digest = hashlib.sha256(reference.encode()).hexdigest()[:28]
        certify_id = f"sbx{_LETTER[sandbox_outcome(subject)]}{digest}"
        return CertifyStart(certify_id=certify_id, url=URL_PREFIX + certify_id)

    async def result(self, certify_id: str) -> FaceResult:
        match = _ID_RE.fullmatch(certify_id)
        if match is None:
            raise DomainError(FACE_CERTIFY_ID_INVALID)
        return _BY_LETTER[match.group(1)]
