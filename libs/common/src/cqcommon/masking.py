"""R-Q-4: what of a person, vehicle or licence a caller may see unmasked — the one
masking rule of the system, shared by the services that show personal data.

Personal data is shown in full only to the person it belongs to and to counter staff
(whose reads are audited at the gateway). Everyone else — followers, people who proved
a vehicle, someone paying another person's fine — gets ID numbers
``5001**********1234``, phones ``139****5678``, names ``张*`` and plates ``渝A***45``;
the VIN and the licence's file number, being proofs themselves (R-Q-1), keep only their
last characters.

Used by the query service (``cqquery.domain.masking`` re-exports it for its views) and
the payment service (a decision found by number that is not the caller's shows the
party's name and plate masked, R-PAY-1, and so does its receipt, R-PAY-8). The
character-level masks of ID numbers, phones and names live beside their formats in
``cqcommon.identifiers`` and are re-exported here, so a caller needs one module.
Every mask keeps the length and is idempotent (masking a masked value changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.identifiers import mask_id_number, mask_name, mask_phone

__all__ = [
    "Person",
    "mask_file_no",
    "mask_id_number",
    "mask_name",
    "mask_person",
    "mask_phone",
    "mask_plate",
    "mask_vin",
    "person_for",
    "person_or_none",
    "sees_in_full",
]


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str
    id_number: str
    phone: str


def sees_in_full(*, subject_person_id: str | None, caller_person_id: str, is_staff: bool) -> bool:
    """Whether the caller may see this person's data unmasked (own data, or staff)."""
    if is_staff:
        return True
    # an empty caller id (no person yet, R-USR-1) must never match a record without one
    return bool(caller_person_id) and subject_person_id == caller_person_id


def mask_person(person: Person) -> Person:
    return Person(
        person_id=person.person_id,
        name=mask_name(person.name),
        id_number=mask_id_number(person.id_number),
        phone=mask_phone(person.phone),
    )


def person_for(person: Person, *, caller_person_id: str, is_staff: bool) -> Person:
    """The person as this caller may see them."""
    full = sees_in_full(
        subject_person_id=person.person_id, caller_person_id=caller_person_id, is_staff=is_staff
    )
    return person if full else mask_person(person)


def person_or_none(
    person: Person | None, *, caller_person_id: str, is_staff: bool
) -> Person | None:
    return (
        None
        if person is None
        else person_for(person, caller_person_id=caller_person_id, is_staff=is_staff)
    )


def mask_vin(vin: str) -> str:
    """All but the last 6 characters starred: ``***********123456``."""
    return "*" * max(0, len(vin) - 6) + vin[-6:]


def mask_file_no(file_no: str) -> str:
    """All but the last 4 digits starred."""
    return "*" * max(0, len(file_no) - 4) + file_no[-4:]


def mask_plate(plate_number: str) -> str:
    """``渝A12345`` → ``渝A***45``, ``渝AD12345`` → ``渝A****45``.

    The province and the issuing office (the first two characters) say only where the
    car is registered, and the last two let its owner recognise it; the rest, which
    would identify the car, is starred. A value of 4 characters or fewer is starred
    whole (keeping its ends would show half of it). Same length, idempotent.
    """
    if len(plate_number) <= 4:
        return "*" * len(plate_number)
    return plate_number[:2] + "*" * (len(plate_number) - 4) + plate_number[-2:]
