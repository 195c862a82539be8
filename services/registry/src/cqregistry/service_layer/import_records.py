"""Use case: import police master data; each changed record publishes its registry event
in the same transaction (outbox), unchanged ones publish nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cqcommon.db import UnitOfWork
from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.events import new_envelope
from cqcommon.identifiers import (
    parse_file_no,
    parse_id_number,
    parse_licence_class,
    parse_plate,
    parse_violation_code,
    points_of_code,
)
from cqcommon.protomap import plate_type_from_proto
from cqtraffic.registry.v1 import registry_pb2 as reg
from google.protobuf.message import Message

PRODUCER = "registry"
MAX_BATCH = 5000


@dataclass(frozen=True)
class ImportResult:
    changed: int
    unchanged: int


def _invalid(index: int, field: str) -> DomainError:
    return DomainError(VALIDATION_FAILED, details={"record": index, "field": field})


def validate_record(index: int, record: reg.RegistryRecord) -> tuple[str, str, Message]:
    """(kind, id, payload) of a well-formed record; raises naming the bad field."""
    kind = record.WhichOneof("record")
    if kind == "person":
        p = record.person
        if not p.person_id or not p.name.strip():
            raise _invalid(index, "person")
        parse_id_number(p.id_number)
        return "person", p.person_id, p
    if kind == "vehicle":
        v = record.vehicle
        ptype = plate_type_from_proto(v.plate_type)
        if not v.vehicle_id or not v.owner_person_id or ptype is None:
            raise _invalid(index, "vehicle")
        parse_plate(ptype, v.plate_number)
        return "vehicle", v.vehicle_id, v
    if kind == "driver":
        d = record.driver
        if not d.licence_id or not d.person_id or d.first_issued_on.year == 0:
            raise _invalid(index, "driver")
        parse_id_number(d.licence_no)
        parse_file_no(d.file_no)
        parse_licence_class(d.licence_class.split("/")[0] if d.licence_class else "")
        return "driver", d.licence_id, d
    if kind == "violation_code":
        c = record.violation_code
        code = parse_violation_code(c.code)
        if c.points != points_of_code(code) or not 0 < c.fine_min_fen <= c.fine_max_fen:
            raise _invalid(index, "violation_code")
        return "violation_code", code, c
    raise _invalid(index, "record")


async def import_records(*, uow: UnitOfWork, records: Sequence[reg.RegistryRecord]) -> ImportResult:
    """All or nothing: one bad record rejects the batch (no partial write, R-ERR-1)."""
    if len(records) > MAX_BATCH:
        raise DomainError(VALIDATION_FAILED, details={"records": f"at most {MAX_BATCH}"})
    validated = [validate_record(i, r) for i, r in enumerate(records)]
    changed = unchanged = 0
    for kind, record_id, payload in validated:
        raw = payload.SerializeToString(deterministic=True)
        digest = hashlib.sha256(raw).hexdigest()
        cur = await uow.conn.execute(
            "INSERT INTO master_records (kind, record_id, content_hash, payload)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (kind, record_id) DO UPDATE SET"
            " content_hash = EXCLUDED.content_hash, payload = EXCLUDED.payload,"
            " imported_at = now() WHERE master_records.content_hash <> EXCLUDED.content_hash",
            (kind, record_id, digest, raw),
        )
        if cur.rowcount == 0:
            unchanged += 1
            continue
        changed += 1
        uow.record(new_envelope(payload, aggregate_id=record_id, producer=PRODUCER))
    await uow.commit()
    return ImportResult(changed, unchanged)
