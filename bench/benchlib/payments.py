"""Shared by the payment benchmarks: fresh owners imported through the registry, one
on-site decided violation each recorded at the counter API, waits until payment knows the
decisions, and the CPU of one database's PostgreSQL backends.

Moved here from ``bench/payment_throughput.py`` (which imports them back, unchanged) so
that ``bench/daymix.py`` and the other scripts share one copy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
from cqcommon.clock import SHANGHAI
from cqcommon.grpc_client import call, make_channel
from cqdev.testing import Owner, new_owner, violation_body, violation_code_record
from cqtraffic.registry.v1 import registry_pb2 as reg
from cqtraffic.registry.v1 import registry_pb2_grpc as reg_grpc

#: A Chongqing division (R-PAY-1: ``50…`` decisions are payable here) and a 10-digit serial.
DIVISION = "500101"


IMPORT_BATCH = 500  # owners per ImportRecords call (3 records each; the service takes 5000)


SETUP_CONCURRENCY = 16


LATE_EVERY = 4  # one decision in four is 20 days old: 5 days of late fee (R-PAY-2)


LATE_AGE_DAYS = 20


@dataclass(frozen=True)
class Decided:
    """An owner's on-site decided violation, known to payment; the owner is logged in."""

    alipay_user_id: str
    decision_no: str
    violation_id: str
    late: bool


#: requests sent a second time after the connection dropped, by exception (printed)
RESENT: Counter[str] = Counter()


async def send(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request, sent once more when its keep-alive connection dropped under it.

    uvicorn closes a connection idle for 5 s; a request written as it closes fails with
    ``RemoteProtocolError`` or, when the close turns into a reset, ``ReadError``. Every
    request here may be sent again: a create carries its Idempotency-Key (the same one),
    a sandbox pay of a paid trade only sends its notification again (a duplicate changes
    nothing, R-PAY-7), the rest are reads or setup records idempotent by their source
    record id. The resends are counted and printed.
    """
    try:
        return await client.request(method, url, **kw)
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        RESENT[type(exc).__name__] += 1
        return await client.request(method, url, **kw)


def unique_owners(count: int, taken: set[tuple[str, str]]) -> list[Owner]:
    """``count`` owners sharing no plate, VIN, ID number, licence file or Alipay id.

    new_owner's plates (7 letters x 10^5) and VIN serials (10^6) repeat within a few
    thousand draws, and two vehicles on one plate would make the counter's record ambiguous.
    """
    owners: list[Owner] = []
    seen = set(taken)
    while len(owners) < count:
        o = new_owner()
        keys = {
            ("plate", o.plate_number),
            ("vin", o.vin),
            ("id", o.id_number),
            ("file", o.file_no),
            ("alipay", o.alipay_user_id),
        }
        if keys & seen:
            continue
        seen |= keys
        owners.append(o)
    return owners


def decision_numbers(count: int) -> Iterator[str]:
    """Distinct Chongqing decision numbers (the database is fresh, so distinct is enough)."""
    rng = random.SystemRandom()
    for serial in rng.sample(range(10**10), count):
        yield f"{DIVISION}{serial:010d}"


async def import_owners(registry_addr: str, owners: Sequence[Owner]) -> None:
    """Import the owners' records (unpinned: the registry picks the ids) in batches."""
    channel = make_channel(registry_addr)
    try:
        stub = reg_grpc.RegistryServiceStub(channel)
        first: list[reg.RegistryRecord] = [violation_code_record()]
        for start in range(0, len(owners), IMPORT_BATCH):
            batch = owners[start : start + IMPORT_BATCH]
            records = first + [r for o in batch for r in o.records(pinned=False)]
            first = []
            await call(stub.ImportRecords, reg.ImportRecordsRequest(records=records), timeout_s=120)
    finally:
        await channel.close(None)


async def staff_headers(client: httpx.AsyncClient) -> dict[str, str]:
    password = os.environ.get("SANDBOX_STAFF_PASSWORD") or "sandbox"
    body = {"username": "clerk01", "password": password}
    r = await send(client, "POST", "/internal/v1/auth/login", json=body)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def bounded(
    items: Sequence[Any], fn: Callable[[Any], Awaitable[Any]], limit: int
) -> list[Any]:
    """``fn`` over ``items`` with at most ``limit`` at once; results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(item: Any) -> Any:
        async with sem:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


async def record_decisions(
    client: httpx.AsyncClient, owners: Sequence[Owner], wait_s: float
) -> list[Decided]:
    """One on-site decided violation per owner through ``POST /internal/v1/violations``.

    Adjudication learns the vehicle and licence from registry events, so a 404 is asked
    again until ``wait_s`` has passed.
    """
    staff = await staff_headers(client)
    today = dt.datetime.now(SHANGHAI).date()
    numbers = decision_numbers(len(owners))
    jobs = [(i, o, next(numbers)) for i, o in enumerate(owners)]

    async def one(job: tuple[int, Owner, str]) -> Decided:
        i, owner, decision_no = job
        late = i % LATE_EVERY == LATE_EVERY - 1
        decided = today - dt.timedelta(days=LATE_AGE_DAYS if late else 0)
        body = violation_body(
            owner.plate_number,
            f"paybench-{uuid.uuid4().hex[:16]}",
            source="on_site",
            procedure="simple",
            licence_no=owner.id_number,
            occurred_at=dt.datetime.combine(
                decided - dt.timedelta(days=1), dt.time(8, 30), SHANGHAI
            ).isoformat(),
            decision_no=decision_no,
            decision_date=decided.isoformat(),
        )
        deadline = time.perf_counter() + wait_s
        while True:
            r = await send(client, "POST", "/internal/v1/violations", json=body, headers=staff)
            if r.status_code == 201:
                return Decided(owner.alipay_user_id, decision_no, r.json()["violation_id"], late)
            if r.status_code != 404 or time.perf_counter() > deadline:
                raise RuntimeError(f"recording {decision_no}: {r.status_code} {r.text}")
            await asyncio.sleep(0.2)

    return await bounded(jobs, one, SETUP_CONCURRENCY)


async def wait_known(
    client: httpx.AsyncClient,
    decided: Sequence[Decided],
    headers: Mapping[str, dict[str, str]],
    wait_s: float,
) -> None:
    """Until payment answers 200 for every decision (it learns them from events)."""
    deadline = time.perf_counter() + wait_s

    async def one(d: Decided) -> None:
        while True:
            r = await send(
                client, "GET", f"/api/v1/decisions/{d.decision_no}",
                headers=headers[d.alipay_user_id],
            )  # fmt: skip
            if r.status_code == 200:
                return
            if r.status_code != 404 or time.perf_counter() > deadline:
                raise RuntimeError(f"decision {d.decision_no}: {r.status_code} {r.text}")
            await asyncio.sleep(0.25)

    await bounded(decided, one, SETUP_CONCURRENCY)


class BackendCpu:
    """CPU (in cores) of the PostgreSQL backends connected to one database while active.

    The server is shared with other databases (other helpers' tests), so its whole tree
    says little; the backends of our database are pooled and live through the load. One
    that exits during it loses its share (an underestimate).
    """

    def __init__(self, dbname: str) -> None:
        self.marker = f" {dbname} "
        self.cores = 0.0
        self._cpu0: dict[int, float] = {}
        self._t0 = 0.0

    def _snapshot(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if proc.info["name"] != "postgres":
                    continue
                if self.marker not in " ".join(proc.info["cmdline"] or []) + " ":
                    continue
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
            except psutil.Error:
                continue
        return out

    def __enter__(self) -> BackendCpu:
        self._cpu0, self._t0 = self._snapshot(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        used = sum(cpu - self._cpu0.get(pid, 0.0) for pid, cpu in self._snapshot().items())
        self.cores = used / wall if wall else 0.0
