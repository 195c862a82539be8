"""R-ADJ-8: when a face verification may authorise a handling step — bound to one handling
and one person, expiring ``ttl`` after it passed, used once (pure domain rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cqadjudication.domain.verification import (
    CertifyStart,
    FaceResult,
    Verification,
    consume,
    record_result,
    start_verification,
    usable_for,
)
from cqcommon.errors import (
    VERIFICATION_EXPIRED,
    VERIFICATION_FAILED,
    VERIFICATION_NOT_FOUND,
    VERIFICATION_PENDING,
    VERIFICATION_USED,
    DomainError,
    ErrorKind,
    ErrorSpec,
)
from cqcommon.settings import Settings

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=600)  # the default face_verification_ttl_s
HANDLING = "6f0c6a52-1d2e-4b8a-9c31-0d8f6b2a7e01"
OTHER_HANDLING = "6f0c6a52-1d2e-4b8a-9c31-0d8f6b2a7e02"
OWNER = "7ea63454-509e-491c-b387-8e815317f169"  # 张伟 in SANDBOX.md
HANDLER = "fdd32fbc-f32a-4d66-88a1-c2cdc595d85d"  # 刘洋


def started(*, step: str = "handler", person: str = HANDLER, at: datetime = T0) -> Verification:
    return start_verification(
        CertifyStart("sbxp" + "0" * 28, "sandbox://face/sbxp" + "0" * 28),
        handling_id=HANDLING,
        step="owner" if step == "owner" else "handler",
        person_id=person,
        adapter="sandbox",
        now=at,
    )


def passed(*, at: datetime = T0, person: str = HANDLER, step: str = "handler") -> Verification:
    return record_result(started(person=person, step=step, at=at), "passed", now=at, ttl=TTL)


def test_r_adj_8_default_ttl_is_ten_minutes() -> None:
    # The field default, not Settings(): the environment may override it.
    assert Settings.model_fields["face_verification_ttl_s"].default == TTL.total_seconds()


def test_r_adj_8_a_started_verification_is_pending_and_not_usable() -> None:
    v = started()
    assert (v.status, v.passed_at, v.expires_at, v.used_at) == ("pending", None, None, None)
    assert usable_for(v, HANDLING, HANDLER, T0) is VERIFICATION_PENDING


def test_r_adj_8_passing_sets_expiry_to_passed_at_plus_ttl() -> None:
    at = T0 + timedelta(seconds=42)
    v = record_result(started(), "passed", now=at, ttl=TTL)
    assert v.status == "passed"
    assert v.passed_at == at
    assert v.expires_at == at + TTL
    assert usable_for(v, HANDLING, HANDLER, at) is None


def test_r_adj_8_asking_again_never_extends_the_life() -> None:
    v = passed()
    again = record_result(v, "passed", now=T0 + timedelta(seconds=500), ttl=TTL)
    assert (again.passed_at, again.expires_at) == (T0, T0 + TTL)
    assert usable_for(again, HANDLING, HANDLER, T0 + timedelta(seconds=700)) is (
        VERIFICATION_EXPIRED
    )


@pytest.mark.parametrize(
    ("seconds_after_pass", "expected"),
    [
        (0, None),
        (599, None),
        (600, VERIFICATION_EXPIRED),  # usable strictly before passed_at + ttl
        (601, VERIFICATION_EXPIRED),
        (86_400, VERIFICATION_EXPIRED),
    ],
)
def test_r_adj_8_expires_ttl_after_passing(
    seconds_after_pass: int, expected: ErrorSpec | None
) -> None:
    v = passed()
    assert usable_for(v, HANDLING, HANDLER, T0 + timedelta(seconds=seconds_after_pass)) is (
        expected
    )


def test_r_adj_8_ttl_comes_from_the_caller() -> None:
    v = record_result(started(), "passed", now=T0, ttl=timedelta(seconds=30))
    assert usable_for(v, HANDLING, HANDLER, T0 + timedelta(seconds=29)) is None
    assert usable_for(v, HANDLING, HANDLER, T0 + timedelta(seconds=30)) is VERIFICATION_EXPIRED


def test_r_adj_8_not_usable_for_another_handling() -> None:
    assert usable_for(passed(), OTHER_HANDLING, HANDLER, T0) is VERIFICATION_NOT_FOUND


def test_r_adj_8_not_usable_for_another_person() -> None:
    # The owner's passed face step cannot stand in for the handler's, nor the reverse.
    owner_step = passed(person=OWNER, step="owner")
    assert usable_for(owner_step, HANDLING, HANDLER, T0) is VERIFICATION_NOT_FOUND
    assert usable_for(passed(), HANDLING, OWNER, T0) is VERIFICATION_NOT_FOUND


def test_r_adj_8_not_usable_for_another_step() -> None:
    owner_step = passed(person=OWNER, step="owner")
    assert usable_for(owner_step, HANDLING, OWNER, T0, step="owner") is None
    assert usable_for(owner_step, HANDLING, OWNER, T0, step="handler") is (VERIFICATION_NOT_FOUND)


def test_r_adj_8_not_yours_reads_exactly_like_missing() -> None:
    # Checked before anything about the verification itself: used, expired or failed,
    # someone else's verification says only "not found".
    used = consume(passed(), HANDLING, HANDLER, T0)
    expired_at = T0 + timedelta(hours=1)
    failed = record_result(started(), "failed", now=T0, ttl=TTL)
    for v in (used, failed, passed()):
        assert usable_for(v, OTHER_HANDLING, HANDLER, expired_at) is VERIFICATION_NOT_FOUND
    assert VERIFICATION_NOT_FOUND.kind is ErrorKind.NOT_FOUND
    with pytest.raises(DomainError) as info:
        consume(used, OTHER_HANDLING, HANDLER, T0)
    assert info.value.code == "VERIFICATION_NOT_FOUND" and info.value.details == {}


def test_r_adj_8_single_use() -> None:
    v = passed()
    used = consume(v, HANDLING, HANDLER, T0 + timedelta(seconds=10))
    assert used.used_at == T0 + timedelta(seconds=10)
    assert usable_for(used, HANDLING, HANDLER, T0 + timedelta(seconds=11)) is VERIFICATION_USED
    with pytest.raises(DomainError) as info:
        consume(used, HANDLING, HANDLER, T0 + timedelta(seconds=11))
    assert info.value.spec is VERIFICATION_USED
    assert info.value.kind is ErrorKind.CONFLICT


def test_r_adj_8_a_used_verification_is_not_revived_by_a_later_answer() -> None:
    used = consume(passed(), HANDLING, HANDLER, T0)
    for answer in ("passed", "failed", "pending"):
        again = record_result(used, answer, now=T0 + timedelta(seconds=5), ttl=TTL)
        assert again == used


def test_r_adj_8_consume_refuses_an_expired_verification() -> None:
    with pytest.raises(DomainError) as info:
        consume(passed(), HANDLING, HANDLER, T0 + TTL)
    assert info.value.spec is VERIFICATION_EXPIRED
    assert info.value.details == {"step": "handler"}


@pytest.mark.parametrize(
    ("answer", "reason"), [("pending", VERIFICATION_PENDING), ("failed", VERIFICATION_FAILED)]
)
def test_r_adj_8_only_a_passed_verification_is_usable(
    answer: FaceResult, reason: ErrorSpec
) -> None:
    v = record_result(started(), answer, now=T0, ttl=TTL)
    assert v.status == answer and v.expires_at is None
    assert usable_for(v, HANDLING, HANDLER, T0) is reason
    with pytest.raises(DomainError) as info:
        consume(v, HANDLING, HANDLER, T0)
    assert info.value.spec is reason


def test_r_adj_8_failed_is_not_final() -> None:
    # Alipay answers "F" until the person passes: a later "T" still counts, and the
    # ten minutes run from that pass.
    failed = record_result(started(), "failed", now=T0, ttl=TTL)
    later = T0 + timedelta(minutes=3)
    v = record_result(failed, "passed", now=later, ttl=TTL)
    assert (v.status, v.passed_at, v.expires_at) == ("passed", later, later + TTL)
    assert usable_for(v, HANDLING, HANDLER, later + timedelta(seconds=599)) is None


def test_r_adj_8_a_pass_taken_back_is_not_trusted() -> None:
    v = record_result(passed(), "failed", now=T0 + timedelta(seconds=1), ttl=TTL)
    assert usable_for(v, HANDLING, HANDLER, T0 + timedelta(seconds=2)) is VERIFICATION_FAILED
    # ... and passing again does not restart the clock.
    back = record_result(v, "passed", now=T0 + timedelta(seconds=300), ttl=TTL)
    assert back.expires_at == T0 + TTL


def test_r_adj_8_a_pass_without_expiry_is_never_usable() -> None:
    forged = Verification(
        certify_id="x",
        handling_id=HANDLING,
        step="handler",
        person_id=HANDLER,
        adapter="sandbox",
        status="passed",
        url="",
        started_at=T0,
        passed_at=T0,
    )
    assert usable_for(forged, HANDLING, HANDLER, T0) is VERIFICATION_EXPIRED


def test_r_adj_8_times_must_be_aware_and_ttl_positive() -> None:
    naive = datetime(2026, 11, 20, 10, 0)
    with pytest.raises(ValueError):
        usable_for(passed(), HANDLING, HANDLER, naive)
    with pytest.raises(ValueError):
        record_result(started(), "passed", now=naive, ttl=TTL)
    with pytest.raises(ValueError):
        record_result(started(), "passed", now=T0, ttl=timedelta(0))
    with pytest.raises(ValueError):
        started(at=naive)


def test_r_adj_8_a_verification_is_bound_when_started() -> None:
    with pytest.raises(ValueError):
        start_verification(
            CertifyStart("", ""),
            handling_id=HANDLING,
            step="handler",
            person_id=HANDLER,
            adapter="sandbox",
            now=T0,
        )
    with pytest.raises(ValueError):
        start_verification(
            CertifyStart("c1", "u"),
            handling_id="",
            step="handler",
            person_id=HANDLER,
            adapter="sandbox",
            now=T0,
        )
