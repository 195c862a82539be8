"""R-Q-4: what of a person, vehicle or licence a caller may see unmasked.

Personal data is shown in full only to the person it belongs to and to counter staff
(whose reads are audited at the gateway). Everyone else — followers, people who proved
a vehicle — gets ID numbers ``5001**********1234``, phones ``139****5678``, names
``张*``; the VIN and the licence's file number, being proofs themselves (R-Q-1), keep
only their last characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.identifiers import mask_id_number, mask_name, mask_phone


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


def mask_vin(vin: str) -> str:
    """All but the last 6 characters starred: ``***********123456``."""
    return "*" * max(0, len(vin) - 6) + vin[-6:]


def mask_file_no(file_no: str) -> str:
    """All but the last 4 digits starred."""
    return "*" * max(0, len(file_no) - 4) + file_no[-4:]


def person_or_none(
    person: Person | None, *, caller_person_id: str, is_staff: bool
) -> Person | None:
    return (
        None
        if person is None
        else person_for(person, caller_person_id=caller_person_id, is_staff=is_staff)
    )
