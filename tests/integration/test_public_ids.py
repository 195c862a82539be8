"""No id that leaves the system gives personal data back.

A person, their vehicle and licence are imported keyed by natural keys only (the registry
chooses the ids); a violation is recorded on them; then everything the gateway shows them
and a counter (``/me``, the violation lists and detail, the proof lookups, the counter
reads) is scanned for UUID-looking values. None may be a uuid3/uuid5 of any of the
record's personal fields — ID number, phone, name, plate, VIN, licence and file number,
bare or with ``kind:`` prefixes — under the standard namespaces or the old registry
namespace: with such an id, a masked ID number (``5001**********1234``) would be enough to
recover the full one offline by trying the hidden digits.

The SANDBOX.md roster goes through the same import with its listed ids pinned: it loads
every listed violation, SBX-ZW-03 (non-site, general procedure, no decision) included,
and its ids pass the same scan.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from cqcommon.clock import SystemClock, today_in_shanghai
from cqdev.testing import Cluster, Owner, eventually, new_owner, violation_code_record
from cqregistry.domain.roster import sandbox_roster
from cqregistry.entrypoints import loader

pytestmark = pytest.mark.integration

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
OLD_REGISTRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cqtraffic:registry")
NAMESPACES = (
    uuid.NAMESPACE_DNS,
    uuid.NAMESPACE_URL,
    uuid.NAMESPACE_OID,
    uuid.NAMESPACE_X500,
    OLD_REGISTRY_NAMESPACE,
)
KINDS = ("person", "vehicle", "licence", "driver", "violation", "owner")


def derivable_ids(fields: Iterable[str]) -> set[uuid.UUID]:
    """Every uuid3/uuid5 of each field, bare and as ``kind:field``, in every namespace."""
    keys: set[str] = set()
    for value in fields:
        keys |= {value, value.lower(), value.upper()}
        keys |= {f"{kind}:{value}" for kind in KINDS}
    return {f(ns, key) for ns in NAMESPACES for key in keys for f in (uuid.uuid3, uuid.uuid5)}


def owner_fields(owner: Owner, plate_type: str = "02") -> list[str]:
    plate = f"{plate_type}:{owner.plate_number}"
    return [
        owner.id_number,
        owner.phone,
        owner.name,
        owner.alipay_user_id,
        owner.plate_number,
        plate,
        owner.vin,
        owner.file_no,
    ]


def uuids_in(responses: Iterable[httpx.Response]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for r in responses:
        assert r.status_code == 200, (r.request.url, r.text)
        found |= {uuid.UUID(m) for m in UUID_RE.findall(r.text)}
    return found


async def _counter_and_user_views(
    cluster: Cluster, headers: dict[str, str], *, vehicle_id: str, licence_id: str, owner: Owner
) -> list[httpx.Response]:
    """Everything the person and a counter see about the person, vehicle and licence."""
    http, staff = cluster.http, await cluster.staff()
    listed = await http.get(
        "/api/v1/violations", params={"vehicle_id": vehicle_id}, headers=headers
    )
    responses = [
        await http.get("/api/v1/me", headers=headers),
        listed,
        await http.get("/api/v1/violations", params={"licence_id": licence_id}, headers=headers),
        await http.post(
            "/api/v1/violations/lookup/vehicle",
            json={"plate_type": "02", "plate_number": owner.plate_number, "vin": owner.vin},
            headers=headers,
        ),
        await http.post(
            "/api/v1/violations/lookup/licence",
            json={"name": owner.name, "licence_no": owner.id_number, "file_no": owner.file_no},
            headers=headers,
        ),
        await http.get(
            "/internal/v1/vehicles",
            params={"plate_type": "02", "plate_number": owner.plate_number},
            headers=staff,
        ),
        await http.get(
            "/internal/v1/licences", params={"licence_no": owner.id_number}, headers=staff
        ),
    ]
    for v in listed.json()["violations"]:
        responses.append(await http.get(f"/api/v1/violations/{v['violation_id']}", headers=headers))
    return responses


async def test_no_public_id_is_derived_from_personal_data(cluster: Cluster) -> None:
    """The registry assigns random ids: nothing shown is a name-based UUID of personal data."""
    owner = await cluster.import_unpinned(new_owner())
    await cluster.import_records([violation_code_record()])
    staff = await cluster.staff()
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    body = {
        "source_system": "camera-net",
        "source_record_id": f"PUBLIC-IDS-{uuid.uuid4().hex[:12]}",
        "plate_type": "02",
        "plate_number": owner.plate_number,
        "violation_code": "1345",
        "occurred_at": occurred.isoformat(),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": "non_site",
        "procedure": "simple",
    }

    async def recorded() -> httpx.Response | None:
        r = await cluster.http.post("/internal/v1/violations", json=body, headers=staff)
        return None if r.status_code == 404 else r  # adjudication has not heard of it yet

    r = await eventually(recorded)
    assert r.status_code == 201, r.text
    violation_id = r.json()["violation_id"]
    headers = await cluster.login(owner.alipay_user_id)

    async def listed() -> list[Any] | None:
        got = await cluster.http.get(
            "/api/v1/violations", params={"vehicle_id": owner.vehicle_id}, headers=headers
        )
        return got.json()["violations"] if got.status_code == 200 else None

    await eventually(listed)
    responses = await _counter_and_user_views(
        cluster, headers, vehicle_id=owner.vehicle_id, licence_id=owner.licence_id, owner=owner
    )
    shown = uuids_in(responses)
    # the scan has something to look at: the record's own ids are in the responses
    own = {uuid.UUID(i) for i in (owner.person_id, owner.vehicle_id, owner.licence_id)}
    assert {uuid.UUID(owner.vehicle_id), uuid.UUID(violation_id)} <= shown
    assert not shown & derivable_ids(owner_fields(owner))
    assert all(i.version == 4 for i in own)  # random, as the registry assigns them


async def test_sandbox_roster_loads_every_violation_with_pinned_ids(cluster: Cluster) -> None:
    """R-SBX-1: the roster loads through the natural-key import with its listed ids pinned;
    every listed violation is recorded, SBX-ZW-03 unhandled without a decision (DOMAIN.md),
    and nothing 张伟 sees is derivable from the roster's personal data."""
    today = today_in_shanghai(SystemClock())
    roster = sandbox_roster(today)
    summary = await loader.load_sandbox(cluster.settings, today=today)
    assert summary.refused == 0, summary.notes
    assert summary.created + summary.replayed + summary.kept == len(roster.violations)
    again = await loader.load_sandbox(cluster.settings, today=today)  # idempotent
    assert (again.changed, again.created, again.refused) == (0, 0, 0)

    zhang = roster.person("2088000000000001")
    car = roster.vehicle("渝A12345")
    licence = roster.licence_of(zhang)
    assert licence is not None
    headers = await cluster.login(zhang.alipay_user_id or "")

    async def all_listed() -> list[Any] | None:
        r = await cluster.http.get(
            "/api/v1/violations", params={"vehicle_id": str(car.vehicle_id)}, headers=headers
        )
        if r.status_code != 200:
            return None
        found = r.json()["violations"]
        return found if len(found) == len(roster.violations_of(car)) else None

    listed = await eventually(all_listed)
    # SBX-ZW-03 is the roster's only code-1636 record: loaded, unhandled, no decision
    (zw03,) = [v for v in listed if v["violation_code"] == "1636"]
    assert (zw03["status"], zw03["procedure"], zw03["source"]) == (
        "unhandled",
        "general",
        "non_site",
    )
    assert not zw03["decision_no"]

    me = await cluster.http.get("/api/v1/me", headers=headers)
    details = [
        await cluster.http.get(f"/api/v1/violations/{v['violation_id']}", headers=headers)
        for v in listed
    ]
    shown = uuids_in([me, *details])
    # the pinned literals are what the system shows
    assert {car.vehicle_id, licence.licence_id} <= shown
    fields: list[str] = []
    for p in roster.people:
        fields += [p.id_number, p.phone, p.name]
    for v in roster.vehicles:
        fields += [v.vin, v.plate_number, f"{v.plate_type.value}:{v.plate_number}"]
    fields += [lic.file_no for lic in roster.licences]
    fields += [v.source_record_id for v in roster.violations]
    assert not shown & derivable_ids(fields)
