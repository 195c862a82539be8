"""What the eligibility engine needs about one handler and some violations, gathered from
the repositories (and, for follows and proofs, the query service's R-Q-1 facts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cqadjudication.domain.callers import Caller
from cqadjudication.domain.decisions import decision_no
from cqadjudication.domain.eligibility import HandlerLicence, Relation
from cqadjudication.ports import Relations, UnitOfWork

#: The query service's relation words (GetRelations, vehicle_relations) in the domain's.
#: "own" is not taken from it: ownership is decided by adjudication's own registry copy.
_QUERY_RELATIONS: dict[str, Relation] = {"followed": "follower", "proven": "proven"}


def relation_of(handler_person_id: str, owner_person_id: str, answered: str | None) -> Relation:
    """The handler's relation to a vehicle: ``owner`` by the registry copy, else what the
    query service said (followed / proven), else ``none``."""
    if handler_person_id and owner_person_id == handler_person_id:
        return "owner"
    return _QUERY_RELATIONS.get(answered or "", "none")


def relation_at_submit(
    handler_person_id: str, owner_person_id: str, at_start: Relation
) -> Relation:
    """The relation a submit assesses with: ownership re-read from the registry copy, a
    follow or proof as it was when the handling started (asking the query service again
    would hold the submit's locks over a network call)."""
    if handler_person_id and owner_person_id == handler_person_id:
        return "owner"
    return at_start if at_start in ("follower", "proven") else "none"


async def relations_for(
    relations: Relations,
    caller: Caller,
    owners: Mapping[str, str],
    given: Mapping[str, str] | None = None,
) -> dict[str, Relation]:
    """The caller's relation to each vehicle of ``owners`` (vehicle id -> owner person).

    ``given`` is the complete map the query service sent along (a vehicle not in it is not
    related, so an empty map asks nobody); when ``None`` (nothing was sent) the query
    service is asked, once, about the vehicles the caller does not own.
    """
    answered: Mapping[str, str] = given or {}
    others = [vid for vid, owner in owners.items() if owner != caller.person_id]
    if others and given is None:
        answered = await relations.relations(caller, others)
    return {
        vid: relation_of(caller.person_id, owner, answered.get(vid))
        for vid, owner in owners.items()
    }


def own_licence(licence: HandlerLicence | None, person_id: str) -> HandlerLicence | None:
    """``licence`` if it is ``person_id``'s (the registry could have moved it since)."""
    return licence if licence is not None and licence.person_id == person_id else None


async def new_decision_no(uow: UnitOfWork, authority_code: str) -> str:
    """A decision number nobody holds: the next serial, skipping (rarely) one an imported
    decision already uses (R-ADJ-7)."""
    while True:
        number = decision_no(authority_code, await uow.violations.next_decision_serial())
        if not await uow.violations.decision_no_taken(number):
            return number


def unique_ids(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))
