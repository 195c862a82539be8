"""The follow copy's rows without a database: each synthetic record's registry event, put
through the follow service's registry consumer, gives the row the bulk loader COPYs (ids as
UUIDs, plate type as its code, no Alipay id for someone off the platform, R-FOL-2)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

from cqdev.datagen import follow_copy as fb
from cqdev.datagen import generate as gen

OPTS = gen.GenerateOptions(vehicles=50, seed=3, today=dt.date(2025, 11, 21))
NOW = dt.datetime(2025, 11, 21, 4, tzinfo=dt.UTC)


async def test_r_fol_2_a_person_row_keeps_phone_and_alipay_id_as_the_consumer_does() -> None:
    people = list(gen.registry_people(OPTS))
    rows = [await fb.as_consumed(p.event(), NOW) for p in people]
    assert all(isinstance(r, fb.PersonRow) for r in rows)
    for person, row in zip(people, rows, strict=True):
        entry = person.entry
        assert row == (
            uuid.UUID(person.record_id),
            entry.name,  # type: ignore[union-attr]
            entry.phone,  # type: ignore[union-attr]
            entry.alipay_user_id or None,  # type: ignore[union-attr]
            NOW,
        )
    # both consent routes occur: on the platform (approval) and off it (SMS)
    assert {row.alipay_user_id is None for row in rows} == {True, False}  # type: ignore[attr-defined]


async def test_vehicle_and_licence_rows_name_their_owner_and_holder() -> None:
    owners = [p.record_id for p in gen.registry_people(OPTS)]
    for v, owner in zip(gen.registry_vehicles(OPTS), owners, strict=True):
        row = await fb.as_consumed(v.event(), NOW)
        assert isinstance(row, fb.VehicleRow)
        assert row.plate_type == v.entry.plate_type.value  # type: ignore[union-attr]
        assert row.plate_number.startswith("渝")
        assert row.owner_person_id == uuid.UUID(owner)
    for lic in itertools.islice(gen.registry_licences(OPTS), 10):
        row = await fb.as_consumed(lic.event(), NOW)
        assert isinstance(row, fb.LicenceRow)
        assert (row.licence_id, row.person_id) == (
            uuid.UUID(lic.record_id),
            uuid.UUID(str(lic.person_id)),
        )
