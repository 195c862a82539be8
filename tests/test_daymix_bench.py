"""The day-mix benchmark's pure parts (``bench/daymix.py``, ``bench/benchlib/daymix_*``):
the mix it deals, how it files requests by endpoint, and how it sizes its pools. The load
itself prints figures and is never asserted on."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.benchlib.daymix_load import MIX, Recorder, deck, route_of
from bench.daymix import _cut, pool_sizes, size_label


def test_any_hundred_operations_dealt_have_the_issues_mix() -> None:
    cards = deck(seed=7)
    assert Counter(cards) == Counter({"read": 80, "handling": 10, "payment": 8, "follow": 2})
    assert cards != deck(seed=8)  # shuffled by the seed


def test_requests_are_filed_under_their_route_with_ids_replaced() -> None:
    uuid = "0b7f5c1e-2f4a-4a8e-9d2c-6f1e5a3b7c9d"

    def route(method: str, url: str) -> str:
        return route_of(httpx.Request(method, url), "127.0.0.1:8010")

    gw = "http://127.0.0.1:8000"
    assert route("GET", f"{gw}/api/v1/violations?vehicle_id={uuid}") == "GET /api/v1/violations"
    assert route("GET", f"{gw}/api/v1/violations/{uuid}") == "GET /api/v1/violations/{id}"
    assert (
        route("POST", f"{gw}/api/v1/handlings/{uuid}/verifications/handler/complete")
        == "POST /api/v1/handlings/{id}/verifications/handler/complete"
    )
    assert route("GET", f"{gw}/api/v1/decisions/5001011234567890") == "GET /api/v1/decisions/{id}"
    assert (
        route("POST", "http://127.0.0.1:8010/sandbox/alipay/trades/2026113022001400001234/pay")
        == "POST fake-alipay:/sandbox/alipay/trades/{id}/pay"
    )
    assert route("GET", f"{gw}/api/v1/me") == "GET /api/v1/me"


def test_only_requests_sent_while_active_are_counted() -> None:
    recorder = Recorder()
    recorder.add("GET /api/v1/me", 3.0, None)
    recorder.active = True
    recorder.add("GET /api/v1/me", 4.0, None)
    recorder.add("GET /api/v1/me", 5.0, "404:VIOLATION_NOT_FOUND")
    me = recorder.endpoints["GET /api/v1/me"]
    assert me.latencies_ms == [4.0, 5.0]
    assert me.errors == Counter({"404:VIOLATION_NOT_FOUND": 1})


def test_pools_are_sized_per_load_with_half_again_for_a_second_replica() -> None:
    sizes = pool_sizes([1, 2], seconds=10, rate=100)
    assert set(sizes) == set(MIX) - {"read"}
    assert sizes["handling"] == [105, 155]  # 1,000 and 1,500 operations, 10 %, +5
    assert sizes["payment"] == [85, 125]
    assert sizes["follow"] == [25, 35]
    assert _cut(list(range(10)), [3, 4]) == [[0, 1, 2], [3, 4, 5, 6]]


def test_data_set_names_follow_query_reads() -> None:
    assert [size_label(n) for n in (1_000_000, 6_000_000, 100_000, 1234)] == [
        "1m",
        "6m",
        "100k",
        "1234",
    ]
