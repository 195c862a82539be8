"""The local stack's components really start, answer, and leave no process behind."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from cqcommon.settings import Settings
from cqdev.stack import (
    Stack,
    StackError,
    ensure_port_free,
    free_port,
    port_is_free,
    project_root,
    start_own_kafka,
    start_own_postgres,
    start_own_redis,
    with_database,
    with_redis_db,
)

pytestmark = pytest.mark.integration


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) for pid in pids)


def _tree(pid: int) -> list[int]:
    return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]


def test_tansu_produce_and_consume_one_message(tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    t0 = time.monotonic()
    kafka = start_own_kafka(tmp_path / "kafka.log")
    print(f"Tansu ready in {time.monotonic() - t0:.2f}s")
    assert kafka.process is not None
    pid = kafka.process.pid
    try:
        admin = KafkaAdminClient(bootstrap_servers=kafka.url)
        admin.create_topics([NewTopic("cqdev-smoke", num_partitions=1, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=kafka.url, acks="all")
        producer.send("cqdev-smoke", key=b"k", value=b"hello", headers=[("h", b"1")]).get(10)
        producer.close()
        # Manual assignment: immediate, unlike a first consumer-group join on Tansu.
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.url,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=10000,
        )
        consumer.assign([TopicPartition("cqdev-smoke", 0)])
        message = next(iter(consumer))
        consumer.close()
        assert (message.key, message.value, message.headers) == (b"k", b"hello", [("h", b"1")])
    finally:
        kafka.close()
    assert _gone([pid])


def test_own_redis_even_when_6379_answers(tmp_path: Path) -> None:
    import redis

    redis_c = start_own_redis(tmp_path / "redis", tmp_path / "redis.log")
    assert redis_c.process is not None
    assert ":6379/" not in redis_c.url
    pids = _tree(redis_c.process.pid)
    try:
        client = redis.Redis.from_url(redis_c.url)
        assert client.ping() is True
        client.close()
    finally:
        redis_c.close()
    assert _gone(pids)


def test_embedded_postgres_on_a_free_port(tmp_path: Path) -> None:
    import psycopg

    t0 = time.monotonic()
    pg = start_own_postgres(tmp_path / "pgdata", tmp_path / "postgres.log", ephemeral=True)
    print(f"embedded PostgreSQL (initdb + start) ready in {time.monotonic() - t0:.2f}s")
    assert pg.process is not None
    assert ":5432/" not in pg.url
    pids = _tree(pg.process.pid)  # postmaster and its background workers
    try:
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        pg.close()
    assert _gone(pids)


def test_whole_stack_forced_own_then_closed() -> None:
    with Stack(postgres="own", redis="own", kafka="own", ephemeral=True) as stack:
        assert stack.started() == ["postgres", "redis", "kafka"]
        pids = [pid for p in stack.processes() for pid in _tree(p.pid)]
        base = stack.base_dir
        assert set(stack.env()) == {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"}
    assert _gone(pids)
    assert not base.exists()


def test_env_vars_win_and_nothing_is_started() -> None:
    environ = {
        "DATABASE_URL": "postgresql://u@db.example:5432/x",
        "REDIS_URL": "redis://cache.example:6379/2",
        "KAFKA_BOOTSTRAP_SERVERS": "broker.example:9092",
    }
    with Stack(environ=environ, ephemeral=True) as stack:
        assert stack.env() == environ
        assert stack.started() == []
        assert stack.reused() == ["postgres", "redis", "kafka"]


def test_busy_port_names_the_env_var() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"{port}.*GATEWAY_PORT"):
            ensure_port_free(port, "GATEWAY_PORT", wait_s=0.3)
    ensure_port_free(free_port(), "GATEWAY_PORT")


def test_a_port_busy_for_a_moment_is_waited_for() -> None:
    """A port held briefly (e.g. as another process's outgoing local port) is waited for
    rather than failing `make run`."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    release = threading.Timer(0.5, sock.close)
    release.start()
    try:
        ensure_port_free(port, "GATEWAY_PORT", wait_s=10)
        assert port_is_free(port)
    finally:
        release.cancel()
        sock.close()


def test_url_helpers() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/cqtraffic?sslmode=disable"
    assert with_database(url, "cqtest_1") == (
        "postgresql://postgres@127.0.0.1:5432/cqtest_1?sslmode=disable"
    )
    assert with_redis_db("redis://127.0.0.1:6379/0", 7) == "redis://127.0.0.1:6379/7"
    assert with_redis_db("redis://127.0.0.1:6379", 7) == "redis://127.0.0.1:6379/7"


def test_plugin_fixtures_give_a_fresh_database_and_redis_db(
    test_settings: Settings, stack: Stack
) -> None:
    import psycopg
    import redis

    assert test_settings.database_url.rsplit("/", 1)[1].startswith("cqtest_")
    with psycopg.connect(test_settings.database_url) as conn:
        row = conn.execute("select current_database()").fetchone()
        assert row is not None and row[0].startswith("cqtest_")
    assert not test_settings.redis_url.endswith("/0")
    client = redis.Redis.from_url(test_settings.redis_url)
    assert client.dbsize() == 0
    client.close()
    assert test_settings.kafka_bootstrap_servers == stack.kafka_bootstrap_servers
    assert test_settings.kafka_topic_prefix.startswith("cqtest-")


def test_every_migrations_folder_reaches_the_test_database(
    migrated_database: dict[str, list[str]],
) -> None:
    """Each services/*/migrations folder is applied, to its own schema, by migrated_database."""
    from cqdev import pytest_plugin

    on_disk = {p.resolve() for p in (project_root() / "services").glob("*/migrations")}
    targets = pytest_plugin.migration_targets()
    assert {folder.resolve() for _, folder in targets} == on_disk
    assert len({schema for schema, _ in targets}) == len(targets), "one schema per service"
    # a fresh database: every target's files were applied just now, none skipped
    for schema, folder in targets:
        expected = {f"{schema}:service/{p.stem}" for p in folder.glob("*.sql")}
        assert expected and expected <= set(migrated_database[schema]), schema


def test_free_port_never_hands_out_a_port_twice() -> None:
    """Several ports are often taken before any is bound (a cluster's services): a random
    draw that repeated gave two services one port."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
