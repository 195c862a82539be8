"""Use case: import police master data keyed by natural keys.

Each record gets its id from the registry (the one already assigned to its natural key,
else its pin, else a fresh random one, :func:`cqregistry.domain.imports.resolve_id`);
each changed record publishes its registry event in the same transaction (outbox) and an
unchanged one publishes nothing. What is stored and published for a record comes from the
:class:`cqregistry.ports.RecordCodec` port (the wire format is the entrypoints' business). All or nothing: one bad record, an unknown owner or
holder, or a pin that disagrees rejects the batch and nothing is written (R-ERR-1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cqcommon.errors import REGISTRY_ID_CONFLICT, VALIDATION_FAILED, DomainError

from cqregistry.domain.events import RecordRegistered
from cqregistry.domain.imports import (
    KIND_ORDER,
    MAX_BATCH,
    DriverEntry,
    Entry,
    VehicleEntry,
    invalid,
    new_record_id,
    resolve_id,
)
from cqregistry.ports import RecordCodec, RegistryUnitOfWork


@dataclass(frozen=True)
class ImportResult:
    changed: int
    unchanged: int
    ids: tuple[str, ...]  # the id of each entry, in the order given


async def _person_id(uow: RegistryUnitOfWork, index: int, entry: Entry) -> str | None:
    """The id of the person a vehicle or licence names by ID number (must be known)."""
    if isinstance(entry, VehicleEntry):
        field, id_number = "owner_id_number", entry.owner_id_number
    elif isinstance(entry, DriverEntry):
        field, id_number = "holder_id_number", entry.holder_id_number
    else:
        return None
    person = await uow.records.find("person", id_number)
    if person is None:
        raise invalid(index, field, reason="no such person in the registry or this batch")
    return person.record_id


async def import_records(
    *,
    uow: RegistryUnitOfWork,
    codec: RecordCodec,
    entries: Sequence[Entry],
    new_id: Callable[[], str] = new_record_id,
    republish: bool = False,
) -> ImportResult:
    """Store ``entries`` and queue their events; commits only when every entry is good.
    ``republish`` queues the event of an unchanged record too (a consumer that joined later
    learns it; every consumer applies a registry event idempotently)."""
    if len(entries) > MAX_BATCH:
        raise DomainError(VALIDATION_FAILED, details={"records": f"at most {MAX_BATCH}"})
    ids = [""] * len(entries)
    changed = unchanged = 0
    # people first, so a vehicle or licence may name a person later in the same batch
    for index in sorted(range(len(entries)), key=lambda i: KIND_ORDER[entries[i].kind]):
        entry = entries[index]
        stored = await uow.records.find(entry.kind, entry.natural_key)
        pin_holder = None
        if entry.pinned_id is not None and (stored is None or stored.record_id != entry.pinned_id):
            pin_holder = await uow.records.natural_key_of(entry.kind, entry.pinned_id)
        record_id = resolve_id(
            entry, index=index, stored=stored, pin_holder=pin_holder, new_id=new_id
        )
        form = codec.stored_form(entry, record_id, await _person_id(uow, index, entry))
        ids[index] = record_id
        if stored is not None and stored.content_hash == form.content_hash:
            unchanged += 1
            if republish:
                uow.record(RecordRegistered(entry.kind, record_id, form.payload))
            continue
        if stored is None:
            if not await uow.records.add(
                entry.kind, entry.natural_key, record_id, form.content_hash, form.payload
            ):
                # another import took this natural key (or id) since we looked: retryable
                raise DomainError(
                    REGISTRY_ID_CONFLICT,
                    details={"record": index, "kind": entry.kind, "reason": "concurrent import"},
                )
        else:
            await uow.records.update(entry.kind, record_id, form.content_hash, form.payload)
        changed += 1
        uow.record(RecordRegistered(entry.kind, record_id, form.payload))
    await uow.commit()
    return ImportResult(changed, unchanged, tuple(ids))
