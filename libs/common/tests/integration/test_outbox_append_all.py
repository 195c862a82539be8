"""A unit of work's events reach the outbox in one statement (cqcommon.outbox
``append_all_to_outbox``) against real PostgreSQL: in their order, each row whole."""

from __future__ import annotations

import uuid

import pytest
from cqcommon.db import Database
from cqcommon.events import TOPIC_REGISTRY_PERSON, new_envelope
from cqcommon.outbox import append_all_to_outbox
from cqcommon.settings import Settings
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration

COLUMNS = "event_id::text, event_type, topic, message_key, envelope, headers"


def envelopes(n: int) -> list[EventEnvelope]:
    return [
        new_envelope(
            reg.PersonRegistered(person_id=str(uuid.uuid4()), name=f"人{i}"),
            aggregate_id=f"p{i}",
            producer="t",
        )
        for i in range(n)
    ]


async def test_events_of_one_commit_are_appended_whole_and_in_order(
    plumbing: tuple[Database, Settings],
) -> None:
    db, _ = plumbing
    many, single = envelopes(5), envelopes(1)
    async with db.transaction() as conn:
        await append_all_to_outbox(conn, many)
        await append_all_to_outbox(conn, single)
        await append_all_to_outbox(conn, [])
    async with db.connection() as conn:
        cur = await conn.execute(f"SELECT {COLUMNS} FROM outbox ORDER BY id")
        rows = await cur.fetchall()
    assert [r[0] for r in rows] == [e.event_id for e in [*many, *single]]
    # each row whole: what the relay publishes from
    event_id, event_type, topic, key, envelope, headers = rows[2]
    assert (event_id, event_type, topic, key) == (
        many[2].event_id,
        many[2].event_type,
        TOPIC_REGISTRY_PERSON,
        "p2",
    )
    assert bytes(envelope) == many[2].SerializeToString()
    assert isinstance(headers, dict)
