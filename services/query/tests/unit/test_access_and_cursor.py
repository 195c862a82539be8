"""Access decisions (R-Q-1) and page cursors of the query service (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cqcommon.errors import DomainError
from cqquery.domain.access import (
    SubjectFacts,
    relation_of,
    require_visible,
)
from cqquery.domain.cursor import (
    MAX_PAGE_SIZE,
    CursorScope,
    CursorSigner,
    Position,
    page_size,
)
from cqquery.domain.model import Caller

OWNER, OTHER = "owner-person", "other-person"


def facts(**kw: object) -> SubjectFacts:
    base: dict[str, object] = {
        "exists": True,
        "owner_person_id": OWNER,
        "followed_by_caller": False,
    }
    return SubjectFacts(**(base | kw))  # type: ignore[arg-type]


def test_owner_follower_prover_and_staff_see_the_subject() -> None:
    """R-Q-1: own, followed, proven — or staff — may see a subject."""
    assert relation_of(facts(), caller_person_id=OWNER, is_staff=False) == "own"
    assert (
        relation_of(facts(followed_by_caller=True), caller_person_id=OTHER, is_staff=False)
        == "followed"
    )
    assert (
        relation_of(facts(proven_by_caller=True), caller_person_id=OTHER, is_staff=False)
        == "proven"
    )
    assert relation_of(facts(), caller_person_id=OTHER, is_staff=True) == "staff"


def test_user_without_a_person_record_owns_nothing() -> None:
    """R-USR-1: a user not in the registry logs in but owns nothing."""
    # an empty person id must never match a subject that has no owner recorded
    assert relation_of(facts(owner_person_id=""), caller_person_id="", is_staff=False) is None


def test_foreign_and_missing_subjects_answer_the_same_not_found() -> None:
    """R-Q-1: a foreign id answers exactly like a missing one (404, never 403)."""
    errors = []
    for subject in (facts(), facts(exists=False, owner_person_id=None)):
        with pytest.raises(DomainError) as err:
            require_visible(relation_of(subject, caller_person_id=OTHER, is_staff=False))
        errors.append(err.value.to_payload())
    assert errors[0] == errors[1]
    assert errors[0]["code"] == "NOT_FOUND"


SIGNER = CursorSigner("a-test-key-that-is-at-least-32-bytes-long")
ALICE, BOB = Caller(user_id="2088000000000001"), Caller(user_id="2088000000000002")
AT = Position(datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "0b7c6c1e-2f0e-4f43-9a57-3c1f0f0d2a11")


def scope(**kw: object) -> CursorScope:
    base: dict[str, object] = {
        "purpose": "user_list",
        "kind": "vehicle",
        "subject_id": "veh-1",
        "status": None,
        "caller": ALICE,
    }
    return CursorScope.of(**(base | kw))  # type: ignore[arg-type]


def assert_invalid(scope_: CursorScope, cursor: str, signer: CursorSigner = SIGNER) -> None:
    with pytest.raises(DomainError) as err:
        signer.verify(scope_, cursor)
    assert err.value.code == "INVALID_CURSOR"


def test_signed_cursor_round_trip() -> None:
    """A cursor continues the list it came from, for the caller it was given to."""
    cursor = SIGNER.sign(scope(), AT)
    assert SIGNER.verify(scope(), cursor) == AT
    assert len(cursor) <= 512, "the gateway passes at most 512 characters"
    staff = scope(purpose="staff_vehicle", caller=Caller(staff_id="clerk01"))
    assert SIGNER.verify(staff, SIGNER.sign(staff, AT)) == AT


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(scope(caller=BOB), id="another-user"),
        pytest.param(scope(caller=Caller(staff_id=ALICE.user_id)), id="staff-with-same-id"),
        pytest.param(scope(subject_id="veh-2"), id="another-subject"),
        pytest.param(scope(kind="licence"), id="vehicle-list-on-a-licence-list"),
        pytest.param(scope(status="handled_unpaid"), id="another-status-filter"),
        pytest.param(scope(purpose="staff_vehicle"), id="another-endpoint"),
    ],
)
def test_a_cursor_from_another_list_or_caller_is_invalid(other: CursorScope) -> None:
    """A cursor used by another caller, on another subject, list, status or endpoint is
    INVALID_CURSOR (400)."""
    assert_invalid(other, SIGNER.sign(scope(), AT))


def test_a_tampered_or_foreign_key_cursor_is_invalid() -> None:
    cursor = SIGNER.sign(scope(), AT)
    body, _, mac = cursor.partition(".")
    later = Position(datetime(2027, 1, 1, tzinfo=UTC), AT.violation_id)
    forged_body = SIGNER.sign(scope(), later).partition(".")[0]
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for bad in (
        "not-a-cursor",
        "",
        "e30",
        body,  # no signature
        f"{forged_body}.{mac}",  # another position under this signature
        f"{body}.{flipped}",
        cursor + "x",
        CursorSigner("another-key-that-is-at-least-32-bytes").sign(scope(), AT),
    ):
        assert_invalid(scope(), bad)


def test_rotation_accepts_cursors_of_the_previous_key_only_while_it_is_set() -> None:
    old_cursor = SIGNER.sign(scope(), AT)
    new_key = "a-new-key-that-is-also-at-least-32-bytes"
    rotating = CursorSigner(new_key, previous="a-test-key-that-is-at-least-32-bytes-long")
    assert rotating.verify(scope(), old_cursor) == AT
    assert CursorSigner(new_key).verify(scope(), rotating.sign(scope(), AT)) == AT
    assert_invalid(scope(), old_cursor, CursorSigner(new_key))


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == 20
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(DomainError):
        page_size(-1)
