"""Face verification as the domain sees it (R-ADJ-8): whose face, for which handling step,
and what an adapter answered. The rules that make a passed verification usable (bound to one
person and one handling, expiring, single use) live here too; the adapters (Alipay, counter,
sandbox) sit behind ``cqadjudication.ports.FaceVerifier``.

A verification's life, as a ``Verification`` record (one row per started verification):

* ``start_verification`` — the adapter gave a certify id and URL; status ``pending``.
* ``record_result`` — what the adapter says now. The first ``passed`` fixes ``passed_at``
  (the moment *we* learnt it) and ``expires_at = passed_at + ttl`` (``face_verification_ttl_s``,
  600 s by default); asking again never extends it. ``failed`` is not final: Alipay reports
  "F" until the person passes (``cqcommon.alipay.CertifyOutcome``), so a later ``passed`` still
  counts.
* ``usable_for`` — may this verification authorise *this* handling step of *this* person
  now? ``None`` or the reason (an ``ErrorSpec`` of the one error table).
* ``consume`` — the same check, then ``used_at`` is set: a verification authorises one
  submit. The database makes it stick across processes: the submit's transaction sets
  ``used_at`` only ``WHERE used_at IS NULL`` (a lost race reads as ``VERIFICATION_USED``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from cqcommon.errors import (
    VERIFICATION_EXPIRED,
    VERIFICATION_FAILED,
    VERIFICATION_NOT_FOUND,
    VERIFICATION_PENDING,
    VERIFICATION_USED,
    DomainError,
    ErrorSpec,
)

#: "owner" consents to points on another's licence (R-ADJ-4); "handler" is the person handling.
Step = Literal["owner", "handler"]
#: What a face adapter says about a started verification.
FaceResult = Literal["passed", "failed", "pending"]
#: The state of a stored verification: the adapter's last answer.
VerificationStatus = FaceResult


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


@dataclass(frozen=True)
class Verification:
    """One started face verification, bound to one handling step and one person.

    ``adapter`` is the ``FaceVerifier.name`` that started it (its result is asked of that
    adapter only). ``passed_at``/``expires_at`` are set by the first ``passed`` result;
    ``used_at`` by the submit it authorised.
    """

    certify_id: str
    handling_id: str
    step: Step
    person_id: str
    adapter: str
    status: VerificationStatus
    url: str
    started_at: datetime
    passed_at: datetime | None = None
    expires_at: datetime | None = None
    used_at: datetime | None = None


def _aware(moment: datetime, what: str) -> datetime:
    # A naive time would compare as local time somewhere and UTC elsewhere: refuse it.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment


def start_verification(
    started: CertifyStart,
    *,
    handling_id: str,
    step: Step,
    person_id: str,
    adapter: str,
    now: datetime,
) -> Verification:
    """The record of a verification an adapter has just started (status ``pending``)."""
    if not started.certify_id:
        raise ValueError("a verification needs the adapter's certify id")
    if not handling_id or not person_id:
        raise ValueError("a verification is bound to a handling and a person")
    return Verification(
        certify_id=started.certify_id,
        handling_id=handling_id,
        step=step,
        person_id=person_id,
        adapter=adapter,
        status="pending",
        url=started.url,
        started_at=_aware(now, "now"),
    )


def record_result(
    verification: Verification, result: FaceResult, *, now: datetime, ttl: timedelta
) -> Verification:
    """The verification after the adapter answered ``result`` at ``now``.

    The first ``passed`` sets ``passed_at = now`` and ``expires_at = now + ttl``; later
    answers keep both (asking again never extends a verification's life). A used
    verification is final and stays as it is.
    """
    _aware(now, "now")
    if ttl <= timedelta(0):
        raise ValueError("the verification ttl must be positive")
    if verification.used_at is not None:
        return verification
    if result == "passed" and verification.passed_at is None:
        return replace(verification, status="passed", passed_at=now, expires_at=now + ttl)
    # Any other answer is recorded as it is: a provider that takes back a pass (it should
    # not) leaves the verification unusable rather than trusted on an old answer.
    return replace(verification, status=result)


def usable_for(
    verification: Verification,
    handling_id: str,
    person_id: str,
    now: datetime,
    *,
    step: Step | None = None,
) -> ErrorSpec | None:
    """``None`` if ``verification`` may authorise ``handling_id``'s step for ``person_id``
    at ``now``, else the reason, checked in this order:

    1. another handling, another person (or another step, when given) ->
       ``VERIFICATION_NOT_FOUND``: not yours reads exactly like missing;
    2. already used -> ``VERIFICATION_USED``;
    3. not passed -> ``VERIFICATION_PENDING`` / ``VERIFICATION_FAILED``;
    4. ``now >= expires_at`` -> ``VERIFICATION_EXPIRED`` (usable strictly before it).
    """
    _aware(now, "now")
    if (
        verification.handling_id != handling_id
        or verification.person_id != person_id
        or (step is not None and verification.step != step)
    ):
        return VERIFICATION_NOT_FOUND
    if verification.used_at is not None:
        return VERIFICATION_USED
    if verification.status == "pending":
        return VERIFICATION_PENDING
    if verification.status == "failed":
        return VERIFICATION_FAILED
    # A pass without an expiry cannot come from record_result; never treat it as endless.
    if verification.expires_at is None or now >= verification.expires_at:
        return VERIFICATION_EXPIRED
    return None


def consume(
    verification: Verification,
    handling_id: str,
    person_id: str,
    now: datetime,
    *,
    step: Step | None = None,
) -> Verification:
    """The verification marked used by ``handling_id``'s submit at ``now``.

    Raises ``DomainError`` with the reason ``usable_for`` gives (``VERIFICATION_USED`` the
    second time).
    """
    reason = usable_for(verification, handling_id, person_id, now, step=step)
    if reason is not None:
        details: dict[str, str] = {"step": verification.step}
        if reason is VERIFICATION_NOT_FOUND:
            details = {}  # nothing about someone else's verification leaves this function
        raise DomainError(reason, details=details)
    return replace(verification, used_at=now)
