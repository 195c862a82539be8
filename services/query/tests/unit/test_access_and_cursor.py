"""Access decisions (R-Q-1) and page cursors of the query service (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cqcommon.errors import DomainError
from cqquery.domain.access import SubjectFacts, relation_of, require_visible
from cqquery.domain.cursor import MAX_PAGE_SIZE, decode_cursor, encode_cursor, page_size

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


def test_cursor_round_trip_and_tampering() -> None:
    at = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "v-1")) == (at, "v-1")
    for bad in ("not-a-cursor", "e30", encode_cursor(at, "v")[:-3]):
        with pytest.raises(DomainError) as err:
            decode_cursor(bad)
        assert err.value.code == "INVALID_CURSOR"


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == 20
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(DomainError):
        page_size(-1)
