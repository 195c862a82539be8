"""The ``alipay`` face verifier (R-ADJ-8): Alipay's open-platform identity verification
(``alipay.user.certify.open.initialize`` / the signed ``…certify`` page / ``…query``),
through the shared ``cqcommon.alipay.AlipayClient``.

* ``start`` initialises a ``FACE`` verification of the person's real name and ID number
  (``identity_type`` CERT_INFO, ``cert_type`` IDENTITY_CARD) with our ``reference`` as
  ``outer_order_no``, and returns Alipay's ``certify_id`` with the signed certify page URL.
  Alipay's initialise has no free text: ``purpose`` is not sent.
* ``result`` asks ``alipay.user.certify.open.query``: "T" -> passed, "F" -> failed (Alipay
  also says "F" before the person finished, so ``failed`` is not final:
  ``cqadjudication.domain.verification.record_result``), no answer yet -> pending.

Every answer is believed only when its RSA2 signature verifies against Alipay's public key
(the client checks it): a tampered or wrongly signed answer is ``FACE_PROVIDER_ANSWER_UNTRUSTED``,
never "passed". A certify id Alipay does not know for our app (foreign, made up, or past
its validity — Alipay keeps one for 23 h) is ``FACE_CERTIFY_ID_INVALID``; timeouts,
"system busy" and our own configuration errors are ``FACE_PROVIDER_UNAVAILABLE`` (503).

Logs carry the certify id, our reference and Alipay's codes, never the name or the ID
number; errors are raised ``from None`` because Alipay's messages may echo the request
(its signature error quotes the whole signed string, ID number included).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Final

from cqcommon.alipay import (
    AlipayAdapterError,
    AlipayClient,
    AlipayError,
    AlipaySignatureError,
    AlipayTransportError,
    CertifyOutcome,
)
from cqcommon.errors import (
    FACE_CERTIFY_ID_INVALID,
    FACE_PROVIDER_ANSWER_UNTRUSTED,
    FACE_PROVIDER_REFUSED,
    FACE_PROVIDER_UNAVAILABLE,
    DomainError,
)

from cqadjudication.domain.verification import CertifyStart, FaceResult, FaceSubject

log = logging.getLogger("cqadjudication.face.alipay")

INITIALIZE: Final = "alipay.user.certify.open.initialize"
QUERY: Final = "alipay.user.certify.open.query"
#: Alipay's "Business Failed": it understood the call and said no.
_BUSINESS_FAILED: Final = "40004"
#: Alipay's certify ids are short alphanumerics; anything else is not one of ours, and is
#: refused without a call (it would only echo attacker-chosen text into the request).
_CERTIFY_ID_RE: Final = re.compile(r"[A-Za-z0-9]{1,64}")
_OUTER_ORDER_NO_RE: Final = re.compile(r"[A-Za-z0-9]{1,32}")
_RETRY_AFTER_S: Final = 2

_OUTCOMES: Final[dict[CertifyOutcome, FaceResult]] = {
    CertifyOutcome.PASSED: "passed",
    CertifyOutcome.FAILED: "failed",
    CertifyOutcome.PENDING: "pending",
}


def outer_order_no(reference: str) -> str:
    """Our reference as Alipay's ``outer_order_no`` (at most 32 letters and digits).

    A UUID (our verification ids) becomes its 32 hex digits; other references must
    already fit.
    """
    try:
        return uuid.UUID(reference).hex
    except ValueError:
        pass
    if _OUTER_ORDER_NO_RE.fullmatch(reference) is None:
        raise ValueError("reference must be a UUID or at most 32 letters and digits")
    return reference


class AlipayFaceVerifier:
    """``FaceVerifier`` over Alipay's open platform (production)."""

    name = "alipay"

    def __init__(self, client: AlipayClient, *, return_url: str | None = None) -> None:
        self._client = client
        # Where Alipay sends the person after the check (the mini-program page), if set.
        self._return_url = return_url

    async def start(self, subject: FaceSubject, *, purpose: str, reference: str) -> CertifyStart:
        order_no = outer_order_no(reference)
        if not subject.name or not subject.id_number:
            raise ValueError("a face verification needs the person's name and ID number")
        try:
            certify_id = await self._client.certify_initialize(
                order_no,
                subject.name,
                subject.id_number,
                biz_code="FACE",
                return_url=self._return_url,
            )
        except AlipayAdapterError as exc:
            raise _domain_error(exc, INITIALIZE, reference=order_no) from None
        log.info("face verification %s started (outer_order_no %s)", certify_id, order_no)
        return CertifyStart(certify_id=certify_id, url=self._client.certify_url(certify_id))

    async def result(self, certify_id: str) -> FaceResult:
        if _CERTIFY_ID_RE.fullmatch(certify_id) is None:
            raise DomainError(FACE_CERTIFY_ID_INVALID)
        try:
            outcome = await self._client.certify_query(certify_id)
        except AlipayAdapterError as exc:
            raise _domain_error(exc, QUERY, reference=certify_id) from None
        return _OUTCOMES[outcome]


def _domain_error(exc: AlipayAdapterError, method: str, *, reference: str) -> DomainError:
    """The stable error for what the client raised; logs Alipay's codes, nothing personal."""
    if isinstance(exc, AlipaySignatureError):
        # Someone between us and Alipay, or a wrong Alipay public key: believe nothing.
        log.warning("%s: answer signature does not verify (%s)", method, reference)
        return DomainError(
            FACE_PROVIDER_ANSWER_UNTRUSTED, details={"retry_after_s": _RETRY_AFTER_S}
        )
    if isinstance(exc, AlipayTransportError):
        log.warning("%s: no usable answer (%s, timed out: %s)", method, reference, exc.timed_out)
        return DomainError(FACE_PROVIDER_UNAVAILABLE, details={"retry_after_s": _RETRY_AFTER_S})
    if not isinstance(exc, AlipayError):  # a failure kind the client may add later
        log.warning("%s: %s (%s)", method, type(exc).__name__, reference)
        return DomainError(FACE_PROVIDER_UNAVAILABLE, details={"retry_after_s": _RETRY_AFTER_S})
    sub_code = exc.sub_code or exc.code
    if exc.verified and exc.code == _BUSINESS_FAILED and not exc.outcome_unknown:
        log.info("%s: refused by Alipay %s/%s (%s)", method, exc.code, sub_code, reference)
        spec = FACE_CERTIFY_ID_INVALID if method == QUERY else FACE_PROVIDER_REFUSED
        return DomainError(spec, details={"provider_code": sub_code})
    # "System busy", an unsigned error (it proves nothing) or a gateway-level refusal of our
    # own request (app id, key, permissions: configuration, not the person's fault).
    level = logging.WARNING if exc.outcome_unknown or not exc.verified else logging.ERROR
    log.log(
        level,
        "%s: Alipay error %s/%s, signed: %s (%s)",
        method,
        exc.code,
        sub_code,
        exc.verified,
        reference,
    )
    return DomainError(FACE_PROVIDER_UNAVAILABLE, details={"retry_after_s": _RETRY_AFTER_S})
