"""The day mix's preconditions (not timed): the pools of :mod:`benchlib.daymix_load`.

All of it runs against the generated data set's database and the cluster started on it:

- **readers**: synthetic owners (person ``i`` has the Alipay id ``20881{i:011d}`` when they
  use the mini-program and owns vehicle ``i``), drawn at random, each with one violation of
  their vehicle, logged in with ``sandbox:<id>``;
- **handlings**: the owners' own camera violations a first SQL filter finds simple enough
  (as ``bench/handling_throughput.py`` does), kept only when the detail's hint says
  ``allowed`` with route ``handler`` (the eligibility engine has the last word);
- **payments**: fresh owners imported through the registry and one on-site decided
  violation each recorded at the counter API (``bench/payment_throughput.py``'s setup),
  kept once payment answers for the decision (it learns them from events);
- **follows**: requesters and approving owners among the synthetic people on the platform,
  SMS owners among those without Alipay id whose phone nobody else has (one SMS per phone:
  R-SMS-1), each vehicle asked once.

The draws take a run seed, so a second run on the same data set asks other people (what a
run handled, paid or followed stays in the data set, like a real day's work).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence

import httpx
import psycopg
from cqdev.testing import Owner

from bench.benchlib.daymix_load import FollowAsk, Handling, Payment, Reader
from bench.benchlib.handling import Candidate, allowed_only, login, pick_candidates
from bench.benchlib.payments import (
    SETUP_CONCURRENCY,
    Decided,
    bounded,
    import_owners,
    record_decisions,
    staff_headers,
    unique_owners,
)

Headers = Mapping[str, str]


def _synthetic_ids(rng: random.Random, vehicles: int, count: int) -> list[str]:
    return [f"20881{i:011d}" for i in rng.sample(range(vehicles), min(vehicles, count))]


def pick_readers(
    url: str, vehicles: int, count: int, rng: random.Random
) -> list[tuple[str, str, str]]:
    """``count`` (alipay_user_id, vehicle_id, violation_id) of synthetic owners."""
    wanted = _synthetic_ids(rng, vehicles, 3 * count)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (p.alipay_user_id) p.alipay_user_id, v.vehicle_id::text,"
            " x.violation_id::text FROM query.persons p"
            " JOIN query.vehicles v ON v.owner_person_id = p.person_id"
            " JOIN query.violations x ON x.vehicle_id = v.vehicle_id"
            " WHERE p.alipay_user_id = ANY(%s) ORDER BY p.alipay_user_id",
            (wanted,),
        ).fetchall()
    picked = [(str(u), str(v), str(x)) for u, v, x in rows]
    rng.shuffle(picked)
    if len(picked) < count:
        raise RuntimeError(f"only {len(picked)} owners with a violation found for the reads")
    return picked[:count]


async def readers(
    client: httpx.AsyncClient, url: str, vehicles: int, count: int, rng: random.Random
) -> list[Reader]:
    picked = pick_readers(url, vehicles, count, rng)
    headers = await login(client, [u for u, _, _ in picked])
    return [Reader(headers[u], v, x) for u, v, x in picked]


async def handlings(
    client: httpx.AsyncClient, url: str, count: int, rng: random.Random
) -> list[Handling]:
    """``count`` violations their owners may handle now (fewer when the data set has not)."""
    # one violation per driver: several would run into the points limit (R-X-1), a refusal
    # that says nothing about the system
    by_driver: dict[str, Candidate] = {}
    for c in pick_candidates(url, 2 * count):
        by_driver.setdefault(c.licence_id, c)
    candidates = list(by_driver.values())
    rng.shuffle(candidates)
    candidates = candidates[: 2 * count]
    headers = await login(client, sorted({c.alipay_user_id for c in candidates}))
    allowed = await allowed_only(client, candidates, headers)
    return [Handling(headers[c.alipay_user_id], c.violation_id) for c in allowed[:count]]


def fresh_owners(url: str, count: int) -> list[Owner]:
    """``count`` new owners none of whose keys the data set already holds.

    Asked of the database for just the drawn keys (reading every plate of 1M vehicles,
    as the payment bench does on its small database, would take a while).
    """
    owners = unique_owners(count + count // 10 + 10, set())
    with psycopg.connect(url, autocommit=True) as conn:
        plates = {r[0] for r in conn.execute(
            "SELECT plate_number FROM query.vehicles WHERE plate_number = ANY(%s)",
            ([o.plate_number for o in owners],),
        )}  # fmt: skip
        vins = {r[0] for r in conn.execute(
            "SELECT vin FROM query.vehicles WHERE vin = ANY(%s)", ([o.vin for o in owners],)
        )}  # fmt: skip
        ids = {r[0] for r in conn.execute(
            "SELECT id_number FROM query.persons WHERE id_number = ANY(%s)",
            ([o.id_number for o in owners],),
        )}  # fmt: skip
        alipay = {r[0] for r in conn.execute(
            "SELECT alipay_user_id FROM query.persons WHERE alipay_user_id = ANY(%s)",
            ([o.alipay_user_id for o in owners],),
        )}  # fmt: skip
    clean = [
        o
        for o in owners
        if o.plate_number not in plates
        and o.vin not in vins
        and o.id_number not in ids
        and o.alipay_user_id not in alipay
    ]
    if len(clean) < count:
        raise RuntimeError(f"only {len(clean)} of {len(owners)} drawn owners are new")
    return clean[:count]


async def payments(
    client: httpx.AsyncClient, url: str, registry_addr: str, count: int, wait_s: float
) -> list[Payment]:
    if count <= 0:
        return []
    owners = fresh_owners(url, count)
    await import_owners(registry_addr, owners)
    decided = await record_decisions(client, owners, wait_s)
    headers = await login(client, [o.alipay_user_id for o in owners])
    known = await known_decisions(client, decided, headers, wait_s)
    if len(known) < len(decided):
        print(
            f"    {len(decided) - len(known)} of {len(decided)} decisions never became payable"
            " (recorded before adjudication knew the party's licence: no party); left out",
            flush=True,
        )
    return [Payment(headers[d.alipay_user_id], d.decision_no) for d in known]


async def known_decisions(
    client: httpx.AsyncClient,
    decided: Sequence[Decided],
    headers: Mapping[str, Mapping[str, str]],
    wait_s: float,
    *,
    stall_s: float = 20.0,
) -> list[Decided]:
    """The decisions payment answers for, asked in rounds until all are, or none more
    became so for ``stall_s``, or ``wait_s`` passed (payment's ``wait_known`` raises at the
    first one missing instead; under load a few are recorded without a party and never
    become payable)."""
    pending = list(decided)
    known: list[Decided] = []
    deadline = time.perf_counter() + wait_s
    moved_at = time.perf_counter()

    async def answers(d: Decided) -> bool:
        r = await client.get(
            f"/api/v1/decisions/{d.decision_no}", headers=dict(headers[d.alipay_user_id])
        )
        return r.status_code == 200

    while pending:
        found = await bounded(pending, answers, SETUP_CONCURRENCY)
        now = time.perf_counter()
        if any(found):
            moved_at = now
        known += [d for d, ok in zip(pending, found, strict=True) if ok]
        pending = [d for d, ok in zip(pending, found, strict=True) if not ok]
        if not pending or now > deadline or now - moved_at > stall_s:
            break
        await asyncio.sleep(1.0)
    return known


def pick_follows(
    url: str, vehicles: int, count: int, rng: random.Random
) -> list[tuple[str, str, tuple[str, str, str], str | None, str | None]]:
    """``count`` follows, half by approval and half by SMS:
    (flow, requester, (plate_type, plate_number, vin), owner Alipay id, owner phone)."""
    approvals, smses = count // 2, count - count // 2
    drawn = _synthetic_ids(rng, vehicles, 3 * (approvals + count) + 10)
    with psycopg.connect(url, autocommit=True) as conn:
        people = conn.execute(
            "SELECT p.alipay_user_id, v.plate_type, v.plate_number, v.vin FROM follow.persons p"
            " JOIN follow.vehicles v ON v.owner_person_id = p.person_id"
            " WHERE p.alipay_user_id = ANY(%s)",
            (drawn,),
        ).fetchall()
        # owners off the platform with a phone: a random sample, then only unshared phones
        sample = conn.execute(
            "SELECT p.phone, v.plate_type, v.plate_number, v.vin"
            " FROM follow.persons p TABLESAMPLE SYSTEM (1) REPEATABLE (%s)"
            " JOIN follow.vehicles v ON v.owner_person_id = p.person_id"
            " WHERE p.alipay_user_id IS NULL AND p.phone IS NOT NULL",
            (rng.randrange(1 << 30),),
        ).fetchall()
        phones = [str(r[0]) for r in sample]
        shared = {
            str(r[0])
            for r in conn.execute(
                "SELECT phone FROM follow.persons WHERE phone = ANY(%s)"
                " GROUP BY phone HAVING count(*) > 1",
                (phones,),
            )
        }
    seen: set[str] = set()
    by_sms = []
    for phone, ptype, plate, vin in sample:
        if phone in shared or phone in seen:
            continue
        seen.add(phone)
        by_sms.append((str(phone), (str(ptype), str(plate), str(vin))))
    rng.shuffle(people)
    rng.shuffle(by_sms)
    # one follow per requester: nobody runs into the 2 active follows of R-FOL-3
    if len(people) < approvals + count or len(by_sms) < smses:
        raise RuntimeError(
            f"not enough people for {count} follows: {len(people)} on the platform,"
            f" {len(by_sms)} owners with a phone of their own in the sample"
        )
    owners, requesters = people[:approvals], people[approvals : approvals + count]
    out: list[tuple[str, str, tuple[str, str, str], str | None, str | None]] = []
    for i, (uid, ptype, plate, vin) in enumerate(owners):
        vehicle = (str(ptype), str(plate), str(vin))
        out.append(("approval", str(requesters[i][0]), vehicle, str(uid), None))
    for j, (phone, vehicle) in enumerate(by_sms[:smses]):
        out.append(("sms", str(requesters[approvals + j][0]), vehicle, None, phone))
    rng.shuffle(out)
    return out


async def follows(
    client: httpx.AsyncClient, url: str, vehicles: int, count: int, rng: random.Random
) -> list[FollowAsk]:
    if count <= 0:
        return []
    picked = pick_follows(url, vehicles, count, rng)
    users = {p[1] for p in picked} | {p[3] for p in picked if p[3]}
    headers = await login(client, sorted(users))
    return [
        FollowAsk(
            headers[requester],
            *vehicle,
            owner_headers=headers[owner] if owner else None,
            phone=phone,
        )
        for _, requester, vehicle, owner, phone in picked
    ]


async def gather_pools(
    gateway: str,
    url: str,
    registry_addr: str,
    vehicles: int,
    *,
    readers_n: int,
    handlings_n: int,
    payments_n: int,
    follows_n: int,
    seed: int,
    wait_s: float,
) -> tuple[list[Reader], list[Handling], list[Payment], list[FollowAsk], dict[str, str]]:
    """Every pool, through the gateway at ``gateway`` (one client, bounded concurrency)."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as client:
        r = await readers(client, url, vehicles, readers_n, rng)
        h = await handlings(client, url, handlings_n, rng)
        f = await follows(client, url, vehicles, follows_n, rng)
        p = await payments(client, url, registry_addr, payments_n, wait_s)
        s = await staff_headers(client)
    return r, h, p, f, s
