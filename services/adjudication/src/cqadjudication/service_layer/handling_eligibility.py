"""Use case: may a caller handle violations online, and why not (R-Q-3 asks for every
violation a user sees; the query service relays, one question per page).

Each known violation is assessed by the full engine (``domain.eligibility.assess``) with
facts from the repositories: the vehicle's owner, the caller's licence and points ledger,
the R-X-2 usage in its cycle, and the caller's relation to each vehicle (sent along by
the query service, or asked of it). An id adjudication does not know, a caller who is no
registered person (staff, a user owning nothing yet), or a relation that cannot be asked
now, gets the record-level answer (``record_eligibility``: its first failing record rule,
else ``unknown``); an unknown id answers ``unknown``, like a record whose own rules pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from cqcommon.errors import TOO_MANY_VIOLATION_IDS, DomainError

from cqadjudication.domain.callers import Caller
from cqadjudication.domain.eligibility import (
    ELIGIBILITY_NOT_AVAILABLE,
    Assessment,
    CycleUsage,
    EligibilityRules,
    assess,
    decided_assessment,
    is_decided,
    needs_cycle_usage,
    record_eligibility,
)
from cqadjudication.domain.violations import Violation
from cqadjudication.ports import Relations, UnitOfWork
from cqadjudication.service_layer.facts import own_licence, relations_for, unique_ids

#: One page of the query service's lists (its MAX_PAGE_SIZE) fits in one question.
MAX_IDS = 100

#: The answer when it cannot be determined (also for an unknown id).
NOT_DETERMINED = Assessment("unknown", "", (ELIGIBILITY_NOT_AVAILABLE,))


def record_level(v: Violation) -> Assessment:
    """The answer the record alone gives (when the person's rules cannot be assessed); a
    decided violation's is whole, as for every caller."""
    decided = decided_assessment(v)
    if decided is not None:
        return decided
    e = record_eligibility(v)
    return Assessment(e.availability, e.route, (e.reason,))


async def handling_eligibility(
    *,
    uow: UnitOfWork,
    relations: Relations,
    caller: Caller,
    violation_ids: Sequence[str],
    given_relations: Mapping[str, str] | None,
    rules: EligibilityRules,
    now: datetime,
) -> dict[str, Assessment]:
    """One answer per distinct id asked about, in the order asked.

    ``given_relations`` is the caller's complete relation map the query service sent
    along (an empty one relates the caller to no vehicle but its own); ``None`` when it
    sent none, and the query service is then asked.
    """
    wanted = unique_ids(violation_ids)
    if len(wanted) > MAX_IDS:
        raise DomainError(TOO_MANY_VIOLATION_IDS, details={"max": MAX_IDS})
    answers = dict.fromkeys(wanted, NOT_DETERMINED)
    found = await uow.violations.get_many(wanted)
    for v in found:
        answers[v.violation_id] = record_level(v)
    if not caller.person_id or not found:
        return answers
    owners = await uow.violations.owners(unique_ids([v.vehicle_id for v in found]))
    try:
        related = await relations_for(relations, caller, owners, given_relations)
    except DomainError:
        related = {vid: "owner" for vid, o in owners.items() if o == caller.person_id}
    # A decided violation's answer is its record's (``assess`` stops there): the caller's
    # licence is read only when a violation is still open, so a page or a detail of handled
    # and paid ones costs two statements instead of five; the R-X-2 usage only for open
    # point-bearing ones on other people's vehicles (the only ones ``assess`` asks it for)
    licence = None
    if any(not is_decided(v) for v in found):
        stored = await uow.points.licence_of_person(caller.person_id)
        licence = own_licence(stored, caller.person_id)
    usage_vehicles = unique_ids(
        [
            v.vehicle_id
            for v in found
            if needs_cycle_usage(
                v,
                owner_person_id=owners.get(v.vehicle_id, ""),
                handler_person_id=caller.person_id,
            )
        ]
    )
    usages = (
        await uow.points.usage(licence, usage_vehicles)
        if licence is not None and usage_vehicles
        else {}
    )
    for v in found:
        if v.vehicle_id not in related:  # its relation could not be asked now: record-level
            continue
        answers[v.violation_id] = assess(
            violation=v,
            owner_person_id=owners.get(v.vehicle_id, ""),
            handler_person_id=caller.person_id,
            licence=licence,
            relation=related[v.vehicle_id],
            usage=usages.get(v.vehicle_id, CycleUsage()),
            now=now,
            rules=rules,
        )
    return answers
