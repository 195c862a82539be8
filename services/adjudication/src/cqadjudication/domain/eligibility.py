"""Whether a violation can be handled online, and by whom: the eligibility engine
(DOMAIN.md "Self-service handling", R-ADJ-1..4, 6, 9, R-X-2; R-Q-3 asks it), pure.

``assess`` takes the record, the vehicle's owner, the handler with their licence and
points ledger, the handler's relation to the vehicle and the licence's R-X-2 usage, and
answers an ``Assessment``: ``allowed`` with the flow to follow (``handler``: the handler's
face, R-ADJ-1/3; ``owner_then_handler``: the owner consents by face, then the handler,
R-ADJ-4), or ``refused`` with **every** failing rule as a ``Reason`` (in a stable order:
the record's rules, then the licence's, then the vehicle relation's, then the points
rules) and the route the user can take (``counter`` when some failing rule's remedy is a
counter, ``payment`` for a decided unpaid record, else ``""``).

Rules, in the order their reasons are listed:

* disputed (R-ADJ-9) -> counter; it is reported even on a decided record (a dispute
  blocks payment too);
* decided unpaid -> pay it (``payment``); paid -> nothing left to do. A decided record has
  nothing to handle, so no handling rule is assessed for it;
* on-site (an officer's ticket carries its decision) -> counter;
* needs the general procedure (procedure ``general`` or a fine over 200 yuan) -> counter,
  which issues the decision; a simple-procedure fine over the configured online limit
  (when that is set below 200 yuan) -> counter;
* no licence -> counter (points and decisions go on a licence); a licence not ``valid``
  (suspended, revoked, over points) -> counter;
* another's vehicle the handler neither owns, follows nor proved (relation ``none``):
  refused. The UI never offers it; the API must not allow it either;
* point-bearing only (code's second digit > 0; a 0-point handling adds nothing):
  A/B-class licence (R-ADJ-2) -> counter; points after handling above the limit
  (R-ADJ-1/4); points changed by another channel within the sync guard (R-ADJ-6) ->
  wait or counter; on another's vehicle (R-X-2) a new other vehicle beyond the licence's
  limit per cycle, or a new licence beyond the vehicle's limit per cycle -> counter.

Every reason's code is an error code of the one table (``cqcommon.errors``, section
"adjudication: eligibility reasons"), and its sentences are that spec's messages, so a
refused StartHandling raises ``Assessment.refusal()``: the first reason's error with
every reason and the route in its details.

``record_eligibility`` is the record-level answer alone (what the batched R-Q-3 hint
gives until the service asks ``assess``): the first record rule that fails, else
``unknown`` (``NOT_DETERMINED``), never a guessed "allowed".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol, cast

from cqcommon import errors
from cqcommon.decided import decided_answer, status_is_decided
from cqcommon.errors import DomainError, ErrorSpec
from cqcommon.identifiers import is_ab_class

from cqadjudication.domain.violations import SIMPLE_PROCEDURE_MAX_FINE_FEN, Violation

Availability = Literal["allowed", "refused", "unknown"]
Route = Literal["", "payment", "counter", "handler", "owner_then_handler"]
#: How the handler relates to the vehicle: its owner (adjudication's registry copy, or the
#: query service's R-Q-1 facts), a follower, someone who proved it, or none of these.
Relation = Literal["owner", "follower", "proven", "none"]

#: The licence status that allows handling; every other one (suspended, revoked,
#: over_points, …) is refused.
VALID_LICENCE_STATUS = "valid"


@dataclass(frozen=True)
class Reason:
    """A stable reason code and the sentence shown to the user (from the error table)."""

    code: str
    zh: str
    en: str

    @classmethod
    def of(cls, spec: ErrorSpec) -> Reason:
        """The reason for an error-table entry: its code and messages."""
        return cls(spec.code, spec.message_zh, spec.message_en)

    @property
    def spec(self) -> ErrorSpec:
        """The error-table entry this reason was built from."""
        return errors.CATALOGUE[self.code]

    def as_dict(self) -> dict[str, str]:
        """The JSON form in a refusal's details: the same keys as API.md's error body and as
        the reasons of a violation's ``online_handling``."""
        return {"code": self.code, "message_zh": self.zh, "message_en": self.en}


@dataclass(frozen=True)
class Eligibility:
    """The record-level answer: one reason (the first failing record rule)."""

    availability: Availability
    route: Route
    reason: Reason


DISPUTED_COUNTER_ONLY = Reason.of(errors.DISPUTED_COUNTER_ONLY)
ALREADY_DECIDED = Reason.of(errors.ALREADY_DECIDED)
ALREADY_PAID = Reason.of(errors.ALREADY_PAID)
ON_SITE_NOT_ONLINE = Reason.of(errors.ON_SITE_NOT_ONLINE)
GENERAL_PROCEDURE_COUNTER_ONLY = Reason.of(errors.GENERAL_PROCEDURE_COUNTER_ONLY)
FINE_OVER_ONLINE_LIMIT = Reason.of(errors.FINE_OVER_ONLINE_LIMIT)
NO_LICENCE = Reason.of(errors.NO_LICENCE)
LICENCE_NOT_VALID_COUNTER_ONLY = Reason.of(errors.LICENCE_NOT_VALID_COUNTER_ONLY)
NOT_RELATED_TO_VEHICLE = Reason.of(errors.NOT_RELATED_TO_VEHICLE)
AB_CLASS_POINTS_COUNTER_ONLY = Reason.of(errors.AB_CLASS_POINTS_COUNTER_ONLY)
POINTS_LIMIT_EXCEEDED = Reason.of(errors.POINTS_LIMIT_EXCEEDED)
POINTS_RECENTLY_CHANGED = Reason.of(errors.POINTS_RECENTLY_CHANGED)
POINTS_BUYING_VEHICLE_LIMIT = Reason.of(errors.POINTS_BUYING_VEHICLE_LIMIT)
POINTS_BUYING_LICENCE_LIMIT = Reason.of(errors.POINTS_BUYING_LICENCE_LIMIT)
ELIGIBILITY_NOT_AVAILABLE = Reason.of(errors.ELIGIBILITY_NOT_AVAILABLE)

#: Refusals a police counter can take over (it checks identity at the desk, lifts the fine
#: and licence-class limits, and judges the licence and points-buying cases in person).
#: Not here: a decided record (pay it), not related to the vehicle, and the points limit,
#: which the counter keeps too.
_COUNTER_REMEDY: frozenset[str] = frozenset(
    r.code
    for r in (
        DISPUTED_COUNTER_ONLY,
        ON_SITE_NOT_ONLINE,
        GENERAL_PROCEDURE_COUNTER_ONLY,
        FINE_OVER_ONLINE_LIMIT,
        NO_LICENCE,
        LICENCE_NOT_VALID_COUNTER_ONLY,
        AB_CLASS_POINTS_COUNTER_ONLY,
        POINTS_RECENTLY_CHANGED,
        POINTS_BUYING_VEHICLE_LIMIT,
        POINTS_BUYING_LICENCE_LIMIT,
    )
)

#: The answer for an id adjudication does not know: the same as for a record whose
#: record-level rules pass, so the answer never tells an existing id from a made-up one.
NOT_DETERMINED = Eligibility("unknown", "", ELIGIBILITY_NOT_AVAILABLE)


@dataclass(frozen=True)
class HandlerLicence:
    """The handler's licence with its points ledger row (current scoring cycle).

    ``points`` are the cycle ``cycle_start``..``cycle_end`` (inclusive, ``cqcommon.scoring``)
    points; keeping the row on the current cycle is the ledger's job, not a rule here.
    ``external_change_at``: the last time another channel (a counter, another province, a
    registry re-import with different points) changed the points; None if none did.
    """

    licence_id: str
    person_id: str
    licence_class: str
    status: str
    points: int
    cycle_start: date
    cycle_end: date
    external_change_at: datetime | None


@dataclass(frozen=True)
class CycleUsage:
    """R-X-2 facts for the handler's licence in its current scoring cycle.

    ``vehicles_taken_for``: other people's vehicles this licence took points for;
    ``licences_on_vehicle``: the distinct licences this violation's vehicle's points went to.
    """

    vehicles_taken_for: frozenset[str] = frozenset()
    licences_on_vehicle: frozenset[str] = frozenset()


class RulesSettings(Protocol):
    """The settings the rules read (``cqcommon.settings.Settings`` has them)."""

    @property
    def points_limit(self) -> int: ...
    @property
    def online_fine_limit_fen(self) -> int: ...
    @property
    def points_sync_guard_hours(self) -> int: ...
    @property
    def points_buying_max_vehicles(self) -> int: ...
    @property
    def points_buying_max_licences(self) -> int: ...


@dataclass(frozen=True)
class EligibilityRules:
    """The configurable numbers of the rules (DOMAIN.md *(config)* values)."""

    points_limit: int = 12
    online_fine_limit_fen: int = SIMPLE_PROCEDURE_MAX_FINE_FEN
    sync_guard: timedelta = timedelta(hours=24)
    max_other_vehicles: int = 3
    max_licences_per_vehicle: int = 3

    @classmethod
    def from_settings(cls, s: RulesSettings) -> EligibilityRules:
        return cls(
            points_limit=s.points_limit,
            online_fine_limit_fen=s.online_fine_limit_fen,
            sync_guard=timedelta(hours=s.points_sync_guard_hours),
            max_other_vehicles=s.points_buying_max_vehicles,
            max_licences_per_vehicle=s.points_buying_max_licences,
        )


@dataclass(frozen=True)
class Assessment:
    """``assess``'s answer: allowed with a route, or refused with every failing rule."""

    availability: Availability
    route: Route
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.availability == "allowed"

    @property
    def reason(self) -> Reason | None:
        """The first reason (what a single-reason answer such as R-Q-3's hint shows)."""
        return self.reasons[0] if self.reasons else None

    def refusal(self) -> DomainError:
        """The error a refused StartHandling raises: the first reason's code (403, or 409
        for a state conflict), with every reason and the route in its details."""
        if not self.reasons:
            raise ValueError("an allowed assessment has no refusal")
        return DomainError(
            self.reasons[0].spec,
            details={"reasons": [r.as_dict() for r in self.reasons], "route": self.route},
        )


def needs_general_procedure(v: Violation) -> bool:
    """DOMAIN.md: fines over 200 yuan (inclusive limit) are beyond the simple procedure."""
    return v.procedure == "general" or v.fine_fen > SIMPLE_PROCEDURE_MAX_FINE_FEN


def is_decided(v: Violation) -> bool:
    """Handled (a decision exists) or paid: nothing is left to handle, and its answer is
    its record's alone (``decided_assessment``; ``assess`` stops there)."""
    return status_is_decided(v.status)


def decided_assessment(v: Violation) -> Assessment | None:
    """A decided violation's answer, the same for every caller (``cqcommon.decided``: the
    query service gives the same one from its read model); None while it is open."""
    decided = decided_answer(v.status, disputed=v.disputed)
    if decided is None:
        return None
    reasons = tuple(Reason.of(spec) for spec in decided.reasons)
    return Assessment("refused", cast(Route, decided.route), reasons)


def needs_cycle_usage(v: Violation, *, owner_person_id: str, handler_person_id: str) -> bool:
    """Whether ``assess`` looks at the licence's R-X-2 usage for ``v``: only for an open,
    point-bearing violation of another person's vehicle (points taken for one's own vehicle
    are no points-buying), so the two usage statements are not run for anything else."""
    return (
        not is_decided(v)
        and v.points > 0
        and bool(handler_person_id)
        and owner_person_id != handler_person_id
    )


def _record_reasons(v: Violation, *, online_fine_limit_fen: int) -> list[Reason]:
    """An open record's failing rules (see the module docstring for the order); a decided
    one is ``decided_assessment``'s."""
    reasons: list[Reason] = []
    if v.disputed:
        reasons.append(DISPUTED_COUNTER_ONLY)
    if v.source == "on_site":
        reasons.append(ON_SITE_NOT_ONLINE)
    if needs_general_procedure(v):
        reasons.append(GENERAL_PROCEDURE_COUNTER_ONLY)
    elif v.fine_fen > online_fine_limit_fen:
        reasons.append(FINE_OVER_ONLINE_LIMIT)
    return reasons


def _refused_route(reasons: list[Reason]) -> Route:
    codes = {r.code for r in reasons}
    if codes & _COUNTER_REMEDY:
        return "counter"
    return ""


def record_eligibility(v: Violation) -> Eligibility:
    """The record-level answer for ``v``: its first failing record rule, else unknown."""
    decided = decided_assessment(v)
    if decided is not None:
        return Eligibility("refused", decided.route, decided.reasons[0])
    reasons = _record_reasons(v, online_fine_limit_fen=SIMPLE_PROCEDURE_MAX_FINE_FEN)
    if not reasons:
        return NOT_DETERMINED
    return Eligibility("refused", _refused_route(reasons), reasons[0])


def _is_ab(licence_class: str) -> bool:
    """R-ADJ-2: any class of the entry starting with A or B. An entry that does not parse
    counts as A/B: refusing online sends it to a counter, which reads the licence itself."""
    try:
        return is_ab_class(licence_class)
    except DomainError:
        return True


def assess(
    *,
    violation: Violation,
    owner_person_id: str,
    handler_person_id: str,
    licence: HandlerLicence | None,
    relation: Relation,
    usage: CycleUsage,
    now: datetime,
    rules: EligibilityRules,
) -> Assessment:
    """May ``handler_person_id`` handle ``violation`` online now, and by which flow?

    ``licence`` is the handler's own licence with its ledger (None: they hold none);
    ``relation`` matters only on another's vehicle (ownership is decided by
    ``owner_person_id``, adjudication's registry copy); ``usage`` is the licence's R-X-2
    usage in its current cycle. Every failing rule is listed (module docstring).
    """
    if licence is not None and licence.person_id != handler_person_id:
        raise ValueError("the licence assessed must be the handler's own")
    v = violation
    decided = decided_assessment(v)
    if decided is not None:
        return decided
    reasons = _record_reasons(v, online_fine_limit_fen=rules.online_fine_limit_fen)

    own_vehicle = owner_person_id == handler_person_id
    point_bearing = v.points > 0
    if licence is None:
        reasons.append(NO_LICENCE)
    elif licence.status != VALID_LICENCE_STATUS:
        reasons.append(LICENCE_NOT_VALID_COUNTER_ONLY)
    if not own_vehicle and relation == "none":
        reasons.append(NOT_RELATED_TO_VEHICLE)
    if point_bearing and licence is not None:
        if _is_ab(licence.licence_class):
            reasons.append(AB_CLASS_POINTS_COUNTER_ONLY)
        if licence.points + v.points > rules.points_limit:
            reasons.append(POINTS_LIMIT_EXCEEDED)
        changed = licence.external_change_at
        # A change stamped in the future (clocks disagree) is also "recent".
        if changed is not None and now - changed < rules.sync_guard:
            reasons.append(POINTS_RECENTLY_CHANGED)
        if not own_vehicle:
            # R-X-2: the same vehicle or licence again is not a new one.
            taken = usage.vehicles_taken_for
            if v.vehicle_id not in taken and len(taken) >= rules.max_other_vehicles:
                reasons.append(POINTS_BUYING_VEHICLE_LIMIT)
            licences = usage.licences_on_vehicle
            if (
                licence.licence_id not in licences
                and len(licences) >= rules.max_licences_per_vehicle
            ):
                reasons.append(POINTS_BUYING_LICENCE_LIMIT)

    if reasons:
        return Assessment("refused", _refused_route(reasons), tuple(reasons))
    if own_vehicle or not point_bearing:
        return Assessment("allowed", "handler")
    return Assessment("allowed", "owner_then_handler")
