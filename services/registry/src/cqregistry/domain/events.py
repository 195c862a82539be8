"""Domain events of the registry: what a committed import announces.

Plain data, no protobuf: the unit of work is given an encoder (by the entrypoint that owns
the wire format) that turns each event into the envelope written to the outbox.
"""

from __future__ import annotations

import dataclasses

from cqregistry.domain.imports import Kind


@dataclasses.dataclass(frozen=True, slots=True)
class RecordRegistered:
    """A new or changed record of ``kind`` under ``record_id``; ``payload`` is its stored
    form's bytes (:class:`cqregistry.domain.imports.StoredForm`), so what is published is
    byte for byte what is stored."""

    kind: Kind
    record_id: str
    payload: bytes
