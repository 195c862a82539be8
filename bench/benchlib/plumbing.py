"""What one operation of a throughput benchmark asks of the plumbing: HTTP requests the
gateway answered, RPCs the services answered, events the consumer groups took, and the
database's transactions and statements.

Counted before and after the timed load, from the services' own Prometheus metrics (the
cluster's ready file lists their endpoints) and PostgreSQL's statistics; statements only
where ``pg_stat_statements`` is loaded (``shared_preload_libraries``), else ``None``.
``bench/plumbing_floor.py`` prices these counts with what each costs on this machine.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from prometheus_client.parser import text_string_to_metric_families

#: PostgreSQL publishes a backend's statistics at most once a second (and when it idles).
STATS_SETTLE_S = 1.2


@dataclass(frozen=True)
class PlumbingCount:
    http_requests: float
    rpcs: float
    events_consumed: float
    transactions: float
    statements: float | None

    def per(self, before: PlumbingCount, n: int) -> PlumbingCount:
        """What ``n`` operations between ``before`` and this count cost each."""
        n = max(n, 1)
        statements = None
        if self.statements is not None and before.statements is not None:
            statements = (self.statements - before.statements) / n
        return PlumbingCount(
            http_requests=(self.http_requests - before.http_requests) / n,
            rpcs=(self.rpcs - before.rpcs) / n,
            events_consumed=(self.events_consumed - before.events_consumed) / n,
            transactions=(self.transactions - before.transactions) / n,
            statements=statements,
        )

    def without(self, statements: int) -> PlumbingCount:
        """This count less ``statements`` the load generator sent itself, each one in a
        transaction of its own (the read-model watcher's)."""
        return PlumbingCount(
            http_requests=self.http_requests,
            rpcs=self.rpcs,
            events_consumed=self.events_consumed,
            transactions=self.transactions - statements,
            statements=None if self.statements is None else self.statements - statements,
        )

    def line(self, what: str) -> str:
        statements = "n/a (pg_stat_statements not loaded)"
        if self.statements is not None:
            statements = f"{self.statements:.1f}"
        return (
            f"  plumbing per {what}: {self.http_requests:.1f} HTTP requests,"
            f" {self.rpcs:.1f} RPCs, {self.events_consumed:.1f} events consumed,"
            f" {self.transactions:.1f} transactions, {statements} SQL statements"
        )


def _scrape(url: str) -> dict[str, float]:
    """Sums of the counters this module reads, from one Prometheus endpoint."""
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own cluster
        text = answer.read().decode("utf-8")
    sums = {"http": 0.0, "rpc": 0.0, "events": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if family.name == "cqtraffic_http_requests":
                sums["http"] += sample.value
            elif family.name == "cqtraffic_grpc_server_handled":
                # health checks are the launcher's and the probes', not the operation's
                if not sample.labels.get("service", "").startswith("grpc."):
                    sums["rpc"] += sample.value
            elif family.name == "cqtraffic_consumer_events":
                sums["events"] += sample.value
    return sums


class PlumbingCounter:
    """Snapshots of the counts for one cluster and its database."""

    def __init__(self, metrics_urls: Mapping[str, str], database_url: str) -> None:
        self.metrics_urls = dict(metrics_urls)
        self.database_url = database_url

    def snapshot(self, *, settle: bool = True) -> PlumbingCount:
        if settle:
            time.sleep(STATS_SETTLE_S)
        totals = {"http": 0.0, "rpc": 0.0, "events": 0.0}
        for url in self.metrics_urls.values():
            for key, value in _scrape(url).items():
                totals[key] += value
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            ).fetchone()
            statements = None
            loaded = conn.execute(
                "SELECT 1 FROM pg_settings WHERE name = 'shared_preload_libraries'"
                " AND setting LIKE '%%pg_stat_statements%%'"
            ).fetchone()
            if loaded:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                counted = conn.execute(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND query NOT IN ('BEGIN', 'COMMIT', 'ROLLBACK')"
                ).fetchone()
                statements = float(counted[0]) if counted else None
        return PlumbingCount(
            http_requests=totals["http"],
            rpcs=totals["rpc"],
            events_consumed=totals["events"],
            transactions=float(row[0]) if row else 0.0,
            statements=statements,
        )
