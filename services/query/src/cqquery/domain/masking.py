"""R-Q-4 masking as the query service uses it: the rule lives in ``cqcommon.masking``
(shared with the payment service) and is re-exported here, so the query's views, ports
and adapters keep importing it from their own domain."""

from __future__ import annotations

from cqcommon.masking import (
    Person,
    mask_file_no,
    mask_person,
    mask_vin,
    person_for,
    person_or_none,
    sees_in_full,
)

__all__ = [
    "Person",
    "mask_file_no",
    "mask_person",
    "mask_vin",
    "person_for",
    "person_or_none",
    "sees_in_full",
]
