"""The day mix's timed load: one user operation after another, in the issue's proportions.

A closed workload: ``concurrency`` asyncio workers, each taking the next operation from a
shuffled deck of 100 (80 reads, 10 handlings, 8 payments, 2 follows: the mix of issue 12,
counted in user operations, not HTTP requests) and doing it to the end before the next.
The deck is dealt in order, so any stretch of 100 operations has the mix exactly.

- **read**: ``GET /api/v1/me``, ``GET /api/v1/violations?vehicle_id=`` or
  ``GET /api/v1/violations/{id}`` in turn, by one of the logged-in owners of the pool;
- **handling** (R-ADJ-5): start → the sandbox face step → submit;
- **payment** (R-PAY-1…3): create (a fresh ``Idempotency-Key``) → pay at the fake Alipay,
  which posts its signed notification to the gateway and answers once that has its answer;
- **follow**: request → the owner's incoming list → approve, or request → the code read from
  the sandbox SMS outbox (as staff) → the code submitted.

Nothing polls for the read model: how long events take to be applied is read afterwards
from the outbox and inbox tables (:mod:`benchlib.daymix_measure`), so every request here is
one a user (or the fake Alipay's buyer) would make. Each operation draws from its
pool; when the handling, payment or follow pool runs dry the run stops early and says so
(the mix would otherwise drift).

Every HTTP request goes through :class:`RecordingClient`, which times it and files it
under its route template (ids replaced by ``{id}``) with its status and error code.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

#: The mix of issue 12, in user operations per 100.
MIX = {"read": 80, "handling": 10, "payment": 8, "follow": 2}
READS = ("me", "list", "detail")

_ID_SEGMENT = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|\d{6,}|[A-Za-z0-9_]{20,})$"
)


def route_of(request: httpx.Request, fake_host: str | None) -> str:
    """``METHOD /path/with/{id}``: the endpoint a request is filed under (no query string)."""
    segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in request.url.path.split("/")]
    prefix = "fake-alipay:" if fake_host and request.url.netloc.decode() == fake_host else ""
    return f"{request.method} {prefix}{'/'.join(segments)}"


@dataclass
class Endpoint:
    """What one endpoint answered during the timed load."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # "409:CODE", "exc:ReadTimeout"


@dataclass
class Recorder:
    """Per-endpoint figures; only requests sent while :attr:`active` count."""

    active: bool = False
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def add(self, route: str, ms: float, error: str | None) -> None:
        if not self.active:
            return
        ep = self.endpoints.setdefault(route, Endpoint())
        ep.latencies_ms.append(ms)
        if error is not None:
            ep.errors[error] += 1


def _error_code(response: httpx.Response) -> str:
    try:
        return f"{response.status_code}:{response.json()['error']['code']}"
    except Exception:
        return str(response.status_code)


class RecordingClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that files every request it sends with a :class:`Recorder`.

    ``send`` is where every request ends up (``get``, ``post``, ``request``), and it has
    read the body before it returns (no streaming here), so the time is the whole answer's.
    """

    def __init__(self, recorder: Recorder, *, fake_host: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.recorder = recorder
        self.fake_host = fake_host

    async def send(self, request: httpx.Request, **kw: Any) -> httpx.Response:
        route = route_of(request, self.fake_host)
        t0 = time.perf_counter()
        try:
            response = await super().send(request, **kw)
        except httpx.HTTPError as exc:
            self.recorder.add(route, (time.perf_counter() - t0) * 1000, f"exc:{type(exc).__name__}")
            raise
        ms = (time.perf_counter() - t0) * 1000
        ok = 200 <= response.status_code < 300
        self.recorder.add(route, ms, None if ok else _error_code(response))
        return response


# --------------------------------------------------------------------------------------
# what the operations work on (prepared before the timed load)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """An owner with a vehicle and one of its violations (the ids they may read)."""

    headers: Mapping[str, str]
    vehicle_id: str
    violation_id: str


@dataclass(frozen=True)
class Handling:
    """A violation its owner may handle online (route ``handler``), the owner logged in."""

    headers: Mapping[str, str]
    violation_id: str


@dataclass(frozen=True)
class Payment:
    """A decision payment knows, its party logged in."""

    headers: Mapping[str, str]
    decision_no: str


@dataclass(frozen=True)
class FollowAsk:
    """A follow to ask for: by approval (``owner_headers``) or by SMS (``phone``)."""

    requester_headers: Mapping[str, str]
    plate_type: str
    plate_number: str
    vin: str
    owner_headers: Mapping[str, str] | None = None
    phone: str | None = None


@dataclass
class Pools:
    """What the operations of one timed load take from (each item used once, but reads)."""

    readers: list[Reader]
    handlings: list[Handling]
    payments: list[Payment]
    follows: list[FollowAsk]
    staff_headers: Mapping[str, str]


# --------------------------------------------------------------------------------------
# the operations
# --------------------------------------------------------------------------------------

RESENDABLE = (httpx.RemoteProtocolError, httpx.ReadError)


async def _send(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request, sent once more when its keep-alive connection dropped under it (uvicorn
    closes idle ones after 5 s); every request here is safe to repeat (a create keeps its
    Idempotency-Key). The dropped attempt stays counted as an error of its endpoint."""
    try:
        return await client.request(method, url, **kw)
    except RESENDABLE:
        return await client.request(method, url, **kw)


def _ok(r: httpx.Response) -> bool:
    return 200 <= r.status_code < 300


async def read_op(client: httpx.AsyncClient, reader: Reader, kind: str) -> bool:
    headers = dict(reader.headers)
    if kind == "me":
        r = await _send(client, "GET", "/api/v1/me", headers=headers)
    elif kind == "list":
        params = {"vehicle_id": reader.vehicle_id}
        r = await _send(client, "GET", "/api/v1/violations", params=params, headers=headers)
    else:
        r = await _send(client, "GET", f"/api/v1/violations/{reader.violation_id}", headers=headers)
    return _ok(r)


async def handling_op(client: httpx.AsyncClient, h: Handling) -> bool:
    headers = dict(h.headers)
    r = await _send(
        client, "POST", f"/api/v1/violations/{h.violation_id}/handlings", headers=headers
    )
    if not _ok(r):
        return False
    handling_id = r.json()["handling_id"]
    path = f"/api/v1/handlings/{handling_id}/verifications/handler/complete"
    r = await _send(client, "POST", path, headers=headers)
    if not _ok(r):
        return False
    r = await _send(client, "POST", f"/api/v1/handlings/{handling_id}/submit", headers=headers)
    return _ok(r)


async def payment_op(client: httpx.AsyncClient, fake: httpx.AsyncClient, p: Payment) -> bool:
    headers = dict(p.headers) | {"Idempotency-Key": uuid.uuid4().hex}
    body = {"decision_no": p.decision_no}
    r = await _send(client, "POST", "/api/v1/payments", json=body, headers=headers)
    if not _ok(r):
        return False
    paid = await _send(fake, "POST", f"/sandbox/alipay/trades/{r.json()['trade_no']}/pay")
    return _ok(paid) and paid.json().get("trade_status") == "TRADE_SUCCESS"


async def follow_op(
    client: httpx.AsyncClient, f: FollowAsk, staff_headers: Mapping[str, str]
) -> bool:
    friend = dict(f.requester_headers)
    body = {"plate_type": f.plate_type, "plate_number": f.plate_number, "vin": f.vin[-6:]}
    r = await _send(client, "POST", "/api/v1/follows/vehicles", json=body, headers=friend)
    if not _ok(r):
        return False
    request_id = r.json()["request_id"]
    if f.owner_headers is not None:
        owner = dict(f.owner_headers)
        r = await _send(client, "GET", "/api/v1/follow-requests/incoming", headers=owner)
        if not _ok(r):
            return False
        r = await _send(
            client, "POST", f"/api/v1/follow-requests/{request_id}/approve", headers=owner
        )
        return _ok(r)
    params = {"phone": f.phone or "", "limit": "1"}
    r = await _send(
        client, "GET", "/internal/v1/sandbox/sms", params=params, headers=dict(staff_headers)
    )
    messages = r.json().get("messages") if _ok(r) else None
    if not messages:
        return False
    code = {"code": str(messages[0]["params"]["code"])}
    path = f"/api/v1/follow-requests/{request_id}/sms-code"
    r = await _send(client, "POST", path, json=code, headers=friend)
    return _ok(r)


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------


@dataclass
class MixResult:
    """One timed load: per-endpoint figures, operations done and failed, the wall time."""

    seconds: float
    recorder: Recorder
    ops: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    exhausted: str | None = None  # the pool that ran dry, if one did
    started_at: float = 0.0  # time.time() at the start and the end (event-lag window)
    ended_at: float = 0.0


def deck(seed: int) -> list[str]:
    """100 operations in :data:`MIX`'s proportions, shuffled."""
    cards = [op for op, n in MIX.items() for _ in range(n)]
    random.Random(seed).shuffle(cards)
    return cards


async def run_mix(
    gateways: Sequence[str],
    fake_url: str,
    pools: Pools,
    *,
    seconds: float,
    concurrency: int,
    recorder: Recorder,
    seed: int = 12,
) -> MixResult:
    """The mix for ``seconds`` by ``concurrency`` workers, spread over ``gateways``
    (worker ``i`` talks to gateway ``i mod n``)."""
    limits = httpx.Limits(
        max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8
    )
    fake_host = httpx.URL(fake_url).netloc.decode()
    clients = [RecordingClient(recorder, base_url=g, timeout=30, limits=limits) for g in gateways]
    fake = RecordingClient(
        recorder, fake_host=fake_host, base_url=fake_url, timeout=30, limits=limits
    )
    cards = itertools.cycle(deck(seed))
    reads = itertools.cycle(READS)
    readers = itertools.cycle(pools.readers)
    queues: dict[str, list[Any]] = {
        "handling": list(reversed(pools.handlings)),
        "payment": list(reversed(pools.payments)),
        "follow": list(reversed(pools.follows)),
    }
    result = MixResult(0.0, recorder)
    stop_at = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient, op: str) -> bool:
        if op == "read":
            return await read_op(client, next(readers), next(reads))
        item = queues[op].pop()
        if op == "handling":
            return await handling_op(client, item)
        if op == "payment":
            return await payment_op(client, fake, item)
        return await follow_op(client, item, pools.staff_headers)

    async def worker(i: int) -> None:
        client = clients[i % len(clients)]
        while time.perf_counter() < stop_at and result.exhausted is None:
            op = next(cards)
            if op != "read" and not queues[op]:
                result.exhausted = op
                return
            try:
                ok = await one(client, op)
            except (httpx.HTTPError, KeyError, ValueError):
                ok = False  # already filed by the recording client (or a malformed answer)
            result.ops[op] += 1
            if not ok:
                result.failed[op] += 1

    try:
        recorder.active = True
        result.started_at = time.time()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        result.seconds = time.perf_counter() - t0
        result.ended_at = time.time()
    finally:
        recorder.active = False
        for c in (*clients, fake):
            await c.aclose()
    return result


async def warm_up(gateways: Sequence[str], readers: Sequence[Reader], seconds: float) -> None:
    """Reads only, untimed: connections, caches and the services' pools warm."""
    stop_at = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30) as client:
        for i, (reader, kind) in enumerate(zip(itertools.cycle(readers), itertools.cycle(READS))):
            if time.perf_counter() >= stop_at:
                return
            client.base_url = httpx.URL(gateways[i % len(gateways)])
            await read_op(client, reader, kind)
