"""Pytest plugin giving tests the real PostgreSQL, Redis and Kafka (registered by ../conftest.py).

Session fixtures:

* ``test_run_id`` — a short random hex id naming this run's database, topics and files.
* ``stack`` — a :class:`cqdev.stack.Stack`: PostgreSQL and Redis resolved like ``make run``
  (env var, machine server, else our own), but Kafka is always a fresh Tansu on a free port
  unless ``TEST_KAFKA_BOOTSTRAP_SERVERS`` names a broker to share (isolated by a unique
  ``KAFKA_TOPIC_PREFIX``).
* ``fake_alipay`` — one :class:`cqdev.fake_alipay.FakeAlipay` for the session, on a free
  loopback port: the payment provider of every test cluster (see its docstring).
* ``test_settings`` — a :class:`cqcommon.settings.Settings` for the run: a fresh database
  ``cqtest_<id>`` (dropped at the end), a random Redis db index 1–15 (FLUSHDB at start and
  end), the test broker, topic prefix ``cqtest-<id>.``, 6 s consumer session timeout, the
  in-memory span exporter, and the ``fake_alipay`` gateway URL, app id, seller id and keys
  (so the payment service of ``cqdev.testing.in_process_cluster`` and of
  ``isolated_cluster``, which copies these settings, talks to it).
* ``test_env`` — the same as env vars, for child processes (``python -m cq<svc> run``).
* ``migrated_database`` — applies every service's migrations (and the gateway's) into the
  test database with ``cqcommon.migrations.apply_migrations``; yields
  ``{schema: [applied migration names]}``.

A component that cannot be provisioned FAILS the tests that need it, never skips them.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import uuid
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cqcommon.migrations import apply_migrations
from cqcommon.settings import Settings

from cqdev.cluster import ALIPAY_NOTIFY_PATH, MIGRATION_ORDER
from cqdev.fake_alipay import FakeAlipay
from cqdev.stack import (
    Mode,
    Stack,
    StackError,
    create_database,
    drop_database,
    with_database,
    with_redis_db,
)
from cqdev.testing import GATEWAY_BASE_URL

TEST_KAFKA_ENV = "TEST_KAFKA_BOOTSTRAP_SERVERS"


def migration_targets() -> list[tuple[str, Path]]:
    """(schema, migrations folder) of every service and the gateway, in migration order.

    Layout (CONVENTIONS.md): ``services/<ctx>/migrations/`` beside ``src/``, the folder each
    service's ``ServiceSpec.migrations_dir`` (and the gateway's ``MIGRATIONS_DIR``) names;
    schema name = service name. Only the packages' ``__init__`` is imported, not their
    wiring: a fixture every integration test needs should not depend on servicer code.
    """
    targets: list[tuple[str, Path]] = []
    for schema, module in MIGRATION_ORDER:
        package_file = importlib.import_module(module).__file__
        assert package_file is not None, f"{module} is a namespace package"
        targets.append((schema, Path(package_file).resolve().parents[2] / "migrations"))
    return targets


def _run_coroutine(awaitable: Awaitable[Any]) -> Any:
    """Run a coroutine on a private loop in a worker thread.

    A session-scoped sync fixture must not disturb pytest-asyncio's event loop, which
    ``asyncio.run`` on this thread would replace.
    """

    async def main() -> Any:
        return await awaitable

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def apply_all_migrations(database_url: str) -> dict[str, list[str]]:
    """Apply every service's migrations into ``database_url``; {schema: applied names}."""
    return {
        schema: _run_coroutine(apply_migrations(database_url, schema, folder))
        for schema, folder in migration_targets()
    }


@pytest.fixture(scope="session")
def test_run_id() -> str:
    """A short random id naming this run's database, topic prefix and temp files."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The real components for this test session (see module docstring)."""
    environ = dict(os.environ)
    shared_kafka = environ.get(TEST_KAFKA_ENV)
    kafka_mode: Mode = "auto" if shared_kafka else "own"
    if shared_kafka:
        environ["KAFKA_BOOTSTRAP_SERVERS"] = shared_kafka
    else:
        # Tests never use the developer's broker: topics from `make run` would leak in.
        environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    the_stack = Stack(environ=environ, kafka=kafka_mode, ephemeral=True)
    try:
        the_stack.start()
    except StackError as exc:
        pytest.fail(f"cannot provision the test stack: {exc}", pytrace=False)
    try:
        yield the_stack
    finally:
        the_stack.close()


def _redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="session")
def fake_alipay() -> Iterator[FakeAlipay]:
    """The session's fake Alipay gateway; ``test_settings`` points the services at it.

    Trades the payment service creates land here (``fake_alipay.trade(out_trade_no)``),
    and the buyer pays with ``fake_alipay.pay(out_trade_no)``. The in-process gateway is
    reached only through httpx's ASGI transport, so the fake cannot post a notification
    to it by itself (its own retries, ``POST /sandbox/alipay/trades/{trade_no}/pay``,
    need a gateway on a real port, as ``make run`` has). A test delivers it::

        fake_alipay.pay(out_trade_no)
        answer = await fake_alipay.send_notification(
            out_trade_no, notify_url="/api/v1/alipay/notify", http=cluster.http
        )
        assert answer == "success"

    (or ``deliver_notification(..., http=cluster.http)`` for Alipay's retries,
    ``replay_notification`` for duplicates, ``notification_params(forged=True,
    overrides=..., trade_status=...)`` for bad and out-of-order ones).
    """
    with FakeAlipay() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fake_alipay_injections_end_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failure or delay a test injected into the session's fake and did not use up must
    not reach the next test (it once made an unrelated close fail)."""
    yield
    if "fake_alipay" in request.fixturenames:
        fake = request.getfixturevalue("fake_alipay")
        assert isinstance(fake, FakeAlipay)
        fake.clear_injections()


def alipay_settings(fake: FakeAlipay) -> dict[str, Any]:
    """Settings overrides that point a service at ``fake`` (keys, ids, URLs)."""
    assert fake.app_private_key_pem is not None  # the fixture lets the fake make the pair
    return {
        "alipay_gateway_url": fake.gateway_url,
        "alipay_app_id": fake.app_id,
        "alipay_seller_id": fake.seller_id,
        "alipay_app_private_key_pem": fake.app_private_key_pem,
        "alipay_public_key_pem": fake.alipay_public_key_pem,
        "alipay_notify_url": GATEWAY_BASE_URL + ALIPAY_NOTIFY_PATH,
    }


@pytest.fixture(scope="session")
def test_settings(stack: Stack, test_run_id: str, fake_alipay: FakeAlipay) -> Iterator[Settings]:
    """``cqcommon.settings.Settings`` on a fresh database / Redis db / topic prefix, with
    the session's fake Alipay as the payment provider and no payment maintenance window."""
    dbname = f"cqtest_{test_run_id}"
    try:
        create_database(stack.database_url, dbname)
    except Exception as exc:
        pytest.fail(f"cannot create test database {dbname}: {exc}", pytrace=False)
    # A random index keeps concurrent runs on one Redis apart in practice; db 0 is the
    # developer's (make run), so it is never flushed.
    redis_url = with_redis_db(stack.redis_url, random.randint(1, 15))
    try:
        _redis_flush(redis_url)
    except Exception as exc:
        drop_database(stack.database_url, dbname)
        pytest.fail(f"cannot use Redis at {redis_url}: {exc}", pytrace=False)
    overrides: dict[str, Any] = {
        "database_url": with_database(stack.database_url, dbname),
        "redis_url": redis_url,
        "kafka_bootstrap_servers": stack.kafka_bootstrap_servers,
        "kafka_topic_prefix": f"cqtest-{test_run_id}.",
        "kafka_session_timeout_ms": 6000,
        "otel_exporter": "memory",
        # R-PAY-6 off for the session: a suite run between 22:00 and 00:30 Beijing time
        # (14:00-16:30 UTC) must not refuse the payments other stories make. The window
        # has tests of its own with a pinned clock and the window set.
        "payment_maintenance_window": "",
        **alipay_settings(fake_alipay),
    }
    try:
        # Keyword overrides win over env vars; every other field keeps its env/default.
        yield Settings(**overrides)
    finally:
        try:
            _redis_flush(redis_url)
        finally:
            drop_database(stack.database_url, dbname)


@pytest.fixture(scope="session")
def test_env(test_settings: Settings) -> dict[str, str]:
    """Env vars pointing a child process at the test database, Redis and broker."""
    return {
        "DATABASE_URL": test_settings.database_url,
        "REDIS_URL": test_settings.redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": test_settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": test_settings.kafka_topic_prefix,
        "KAFKA_SESSION_TIMEOUT_MS": str(test_settings.kafka_session_timeout_ms),
        "OTEL_EXPORTER": "none",
        "PYTHONUNBUFFERED": "1",
        "PAYMENT_MAINTENANCE_WINDOW": test_settings.payment_maintenance_window,
        "ALIPAY_GATEWAY_URL": test_settings.alipay_gateway_url,
        "ALIPAY_APP_ID": test_settings.alipay_app_id,
        "ALIPAY_SELLER_ID": test_settings.alipay_seller_id,
        "ALIPAY_APP_PRIVATE_KEY_PEM": test_settings.alipay_app_private_key_pem,
        "ALIPAY_PUBLIC_KEY_PEM": test_settings.alipay_public_key_pem,
    }


@pytest.fixture(scope="session")
def migrated_database(test_settings: Settings) -> dict[str, list[str]]:
    """Every service's migrations applied into the test database: {schema: names}."""
    return apply_all_migrations(test_settings.database_url)


__all__ = [
    "alipay_settings",
    "apply_all_migrations",
    "fake_alipay",
    "migrated_database",
    "migration_targets",
    "stack",
    "test_env",
    "test_run_id",
    "test_settings",
]
