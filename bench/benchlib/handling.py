"""Shared by the handling benchmarks: violations their owners may handle online, owners
logged in, one request resent after a dropped keep-alive connection, percentiles.

Moved here from ``bench/handling_throughput.py`` (which imports them back, unchanged) so
that ``bench/daymix.py`` and the other scripts share one copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from bench.benchlib.fastclient import FastClient


@dataclass
class Candidate:
    violation_id: str
    alipay_user_id: str
    licence_id: str
    points: int


def pick_candidates(url: str, wanted: int) -> list[Candidate]:
    """Owners' own camera violations that the simple procedure allows, several per driver.

    A first filter in SQL (the eligibility engine has the last word: the detail's hint is
    asked for each before the run).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT x.violation_id::text, p.alipay_user_id, l.licence_id::text, x.points"
            " FROM query.violations x"
            " JOIN query.vehicles v ON v.vehicle_id = x.vehicle_id"
            " JOIN query.persons p ON p.person_id = v.owner_person_id"
            " JOIN query.licences l ON l.person_id = p.person_id"
            " WHERE x.status = 'unhandled' AND x.source = 'non_site'"
            " AND x.procedure = 'simple' AND x.fine_fen <= 20000 AND NOT x.disputed"
            " AND p.alipay_user_id IS NOT NULL AND l.licence_class LIKE 'C%%'"
            " ORDER BY p.alipay_user_id, x.violation_id LIMIT %s",
            (wanted * 3,),
        ).fetchall()
    return [Candidate(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


async def send(client: Any, method: str, url: str, **kw: Any) -> Any:
    """One request through an ``httpx.AsyncClient`` or a ``FastClient``, sent again once
    when the server had just closed the idle keep-alive connection it was written to
    (uvicorn closes them after 5 s; nothing was processed)."""
    try:
        return await client.request(method, url, **kw)
    except (httpx.RemoteProtocolError, *FastClient.DROPPED):
        return await client.request(method, url, **kw)


async def login(client: httpx.AsyncClient, user_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    sem = asyncio.Semaphore(16)

    async def one(user_id: str) -> tuple[str, dict[str, str]]:
        async with sem:
            body = {"auth_code": f"sandbox:{user_id}"}
            r = await send(client, "POST", "/api/v1/auth/alipay", json=body)
            r.raise_for_status()
            return user_id, {"Authorization": f"Bearer {r.json()['token']}"}

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


async def allowed_only(
    client: httpx.AsyncClient, candidates: list[Candidate], headers: dict[str, dict[str, str]]
) -> list[Candidate]:
    """The candidates whose detail says the owner may handle them now (route ``handler``)."""
    sem = asyncio.Semaphore(16)

    async def check(c: Candidate) -> Candidate | None:
        async with sem:
            r = await send(
                client, "GET", f"/api/v1/violations/{c.violation_id}",
                headers=headers[c.alipay_user_id],
            )  # fmt: skip
        hint = (r.json().get("online_handling") or {}) if r.status_code == 200 else {}
        return c if hint.get("allowed") and hint.get("route") == "handler" else None

    return [c for c in await asyncio.gather(*(check(c) for c in candidates)) if c is not None]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
