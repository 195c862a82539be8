"""R-X-2 points-buying alerts: what staff see when online handling was refused because a
licence takes points for too many other people's vehicles, or a vehicle's points go to
too many licences, in one scoring cycle. Pure: built from the refused assessment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from cqadjudication.domain.eligibility import (
    POINTS_BUYING_LICENCE_LIMIT,
    POINTS_BUYING_VEHICLE_LIMIT,
    Assessment,
    CycleUsage,
)

AlertKind = Literal["licence_for_many_vehicles", "vehicle_to_many_licences"]


@dataclass(frozen=True)
class PointsBuyingAlert:
    alert_id: str
    kind: AlertKind
    licence_id: str
    vehicle_id: str
    cycle_start: date
    #: distinct vehicles (or licences) already in the cycle when the attempt was refused
    count: int
    violation_id: str
    handler_person_id: str
    raised_at: datetime


@dataclass(frozen=True)
class AlertCase:
    """Who tried what: the facts an alert names besides the refusal itself."""

    licence_id: str
    vehicle_id: str
    cycle_start: date
    violation_id: str
    handler_person_id: str


def alerts_for(
    assessment: Assessment,
    usage: CycleUsage,
    case: AlertCase,
    *,
    now: datetime,
    new_id: Callable[[], str],
) -> list[PointsBuyingAlert]:
    """One alert per R-X-2 reason of ``assessment`` (none when it names none)."""
    codes = {r.code for r in assessment.reasons}
    kinds: list[tuple[AlertKind, int]] = []
    if POINTS_BUYING_VEHICLE_LIMIT.code in codes:
        kinds.append(("licence_for_many_vehicles", len(usage.vehicles_taken_for)))
    if POINTS_BUYING_LICENCE_LIMIT.code in codes:
        kinds.append(("vehicle_to_many_licences", len(usage.licences_on_vehicle)))
    return [
        PointsBuyingAlert(
            alert_id=new_id(),
            kind=kind,
            licence_id=case.licence_id,
            vehicle_id=case.vehicle_id,
            cycle_start=case.cycle_start,
            count=count,
            violation_id=case.violation_id,
            handler_person_id=case.handler_person_id,
            raised_at=now,
        )
        for kind, count in kinds
    ]
