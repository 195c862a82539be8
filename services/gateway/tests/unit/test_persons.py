"""R-USR-1: a token issued before the user's registry record reached the read model carries
no person; the gateway resolves it (cqgateway.persons) so other services see the owner."""

from __future__ import annotations

from cqcommon.errors import SERVICE_UNAVAILABLE, DomainError
from cqgateway.persons import PersonResolver


class Answers:
    """The query service's ResolveUser, scripted: answers in order, counting the calls."""

    def __init__(self, *answers: str | DomainError) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, user_id: str) -> str:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, DomainError):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_found_person_is_remembered() -> None:
    answers, clock = Answers("p-1"), Clock()
    resolver = PersonResolver(answers, found_ttl_s=300, clock=clock)
    assert await resolver.person_of("u-1") == "p-1"
    clock.now += 299
    assert await resolver.person_of("u-1") == "p-1"
    assert answers.calls == 1


async def test_no_person_yet_is_asked_again_on_the_next_request() -> None:
    """The record arrives moments after the login: the very next request sees the person,
    not the token's "none" for the token's whole life."""
    answers = Answers("", "", "p-1")
    resolver = PersonResolver(answers, clock=Clock())
    assert await resolver.person_of("u-1") == ""
    assert await resolver.person_of("u-1") == ""
    assert await resolver.person_of("u-1") == "p-1"
    assert await resolver.person_of("u-1") == "p-1"
    assert answers.calls == 3


async def test_query_down_means_no_person_not_an_error_and_is_not_remembered() -> None:
    answers = Answers(DomainError(SERVICE_UNAVAILABLE), "p-1")
    resolver = PersonResolver(answers, clock=Clock())
    assert await resolver.person_of("u-1") == ""
    assert await resolver.person_of("u-1") == "p-1"


async def test_answers_are_per_user() -> None:
    answers = Answers("p-1", "p-2")
    resolver = PersonResolver(answers, clock=Clock())
    assert await resolver.person_of("u-1") == "p-1"
    assert await resolver.person_of("u-2") == "p-2"
    assert await resolver.person_of("u-1") == "p-1"
    assert answers.calls == 2
