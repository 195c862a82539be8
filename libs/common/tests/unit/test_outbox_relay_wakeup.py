"""When the outbox relay looks for events, on a fake outbox (no database, no broker):
it drains until a batch comes back short, then waits for a wake-up or the poll interval;
a burst of notifications is one drain; a notification during a drain drains again;
polling alone (``listen=False``) keeps looking every interval and opens no LISTEN
connection. Nothing here waits on the clock: the poll interval is an hour unless the test
is about polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from cqcommon.db import Database
from cqcommon.outbox import OutboxListener, OutboxRelay, Producer, RelayConfig

HOUR = 3600.0


def no_producer() -> Producer:
    raise AssertionError("the fake outbox never sends")


class FakeOutboxRelay(OutboxRelay):
    """A relay whose batches come from a script: each ``publish_batch`` returns the next
    count (then 0), and may run a side effect first (a notification mid-drain)."""

    def __init__(self, config: RelayConfig, counts: list[int]) -> None:
        super().__init__(Database("postgresql://unused", "fake"), no_producer, config=config)
        self.counts = list(counts)
        self.calls = 0
        self.during: dict[int, Callable[[], None]] = {}
        self.called = asyncio.Event()

    async def publish_batch(self) -> int:
        self.calls += 1
        if self.calls in self.during:
            self.during[self.calls]()
        self.called.set()
        return self.counts.pop(0) if self.counts else 0


async def settle(relay: FakeOutboxRelay) -> None:
    """Until the relay waits again (a fake batch never yields, so the loop gets there)."""
    for _ in range(1000):
        if relay.idle and not relay._wake.is_set():
            return
        await asyncio.sleep(0)
    raise AssertionError("the relay never went idle")


@pytest.fixture
async def stop() -> AsyncIterator[asyncio.Event]:
    event = asyncio.Event()
    yield event
    event.set()


def start(relay: FakeOutboxRelay, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(relay.run(stop))


def listening(relay: FakeOutboxRelay) -> None:
    """Pretend the LISTEN connection is up (the relay trusts notifications then)."""
    listener = OutboxListener("postgresql://unused", "outbox_fake", relay.wake, config=relay.config)
    listener.backend_pid = 4242
    relay.listener = listener


async def test_polling_relay_drains_until_a_batch_is_empty_then_waits_for_a_wakeup(
    stop: asyncio.Event,
) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=HOUR), [200, 200, 7])
    task = start(relay, stop)
    await settle(relay)
    assert relay.calls == 4  # two full batches, a short one, and the empty query
    for _ in range(50):
        await asyncio.sleep(0)
    assert relay.calls == 4  # an hour to the next poll: nothing without a wake-up
    stop.set()
    await task
    assert relay.listener is None  # OUTBOX_LISTEN=false: no LISTEN connection at all


async def test_a_burst_of_notifications_is_one_drain(stop: asyncio.Event) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=HOUR), [])
    listening(relay)
    task = start(relay, stop)
    await settle(relay)
    before = relay.calls
    for _ in range(100):
        relay.wake()
    await settle(relay)
    assert relay.calls == before + 1
    stop.set()
    await task


async def test_a_listening_relay_trusts_notifications_after_a_short_batch(
    stop: asyncio.Event,
) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=HOUR), [5])
    listening(relay)
    task = start(relay, stop)
    await settle(relay)
    # a short batch emptied the outbox as of its query; rows committed later notify, so
    # no empty query follows it
    assert relay.calls == 1
    stop.set()
    await task


async def test_a_notification_during_a_drain_drains_again(stop: asyncio.Event) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=HOUR), [5, 3])
    listening(relay)
    relay.during[1] = relay.wake  # a row committed while the first batch was being sent
    task = start(relay, stop)
    await settle(relay)
    assert relay.calls == 2
    stop.set()
    await task


async def test_a_full_batch_is_followed_by_another_even_when_listening(
    stop: asyncio.Event,
) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=HOUR, batch_size=10), [10])
    listening(relay)
    task = start(relay, stop)
    await settle(relay)
    assert relay.calls == 2
    stop.set()
    await task


async def test_a_relay_without_notifications_polls_every_interval(stop: asyncio.Event) -> None:
    relay = FakeOutboxRelay(RelayConfig(listen=False, poll_interval_s=0.001), [])
    task = start(relay, stop)
    for _ in range(3):
        relay.called.clear()
        await asyncio.wait_for(relay.called.wait(), timeout=30)
    assert relay.calls >= 3
    stop.set()
    await task
