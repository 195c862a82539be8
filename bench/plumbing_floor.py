"""The plumbing's floor: what one HTTP request, one gRPC call, one SQL statement and one
consumed event cost in CPU on this machine with no business logic at all, and the floor
that puts under a handling (issue 8) and a payment (issue 9).

    .venv/bin/python bench/plumbing_floor.py [--calls 3000] [--events 1500]
        [--event-rate 100] [--handling 4.1,4.1,29.8,2.6] [--payment 3.0,3.0,26.2,2.0]

Each piece is measured alone, sequentially, with the libraries and settings the cluster
uses, its server in a process of its own so that both sides' CPU are read apart:

- **HTTP**: FastAPI under uvicorn (the gateway's ``uvicorn_config``) answering a bare
  ``GET`` with a small JSON body; the server's CPU per request (the client is the load
  generator's and not counted).
- **gRPC**: a ``grpc.aio`` unary echo of 200 bytes; client and server CPU per call.
- **SQL**: psycopg's ``AsyncConnection`` (prepared, autocommit) running a primary-key
  read of a small table; client CPU and the backend's own CPU per statement (the backend
  read from ``/proc``, so PostgreSQL must run on this machine).
- **Event**: kafka-python with the services' producer and consumer settings
  (``cqcommon.kafka``; offsets committed as ``EventConsumer`` does) through a Tansu broker
  of its own, ``--event-rate`` events a second, each flushed on its own as a relay woken
  per commit does; the consumer's and the broker's CPU per event consumed (the producer's
  and the relay's own are left out).

The counts per operation (HTTP requests, RPCs, statements, events consumed) are what
``handling_throughput.py`` and ``payment_throughput.py`` print as "plumbing per ...".
The floor is a lower bound: it leaves out transactions' BEGIN/COMMIT, commits' WAL
writes, the relays, the producers, every line of our own code, serialisation of real
messages and the load generator, so the real cost per operation is well above it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import psutil
import psycopg
from cqdev.stack import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.query_read import DEFAULT_PG_SERVER, bench_dir

CORES = psutil.cpu_count() or 2

HTTP_SERVER = """
import sys
import uvicorn
from fastapi import FastAPI
from cqcommon.settings import Settings
from cqgateway.__main__ import uvicorn_config

app = FastAPI()

@app.get("/floor")
async def floor() -> dict[str, str]:
    return {"status": "ok"}

settings = Settings(gateway_host="127.0.0.1", gateway_port=int(sys.argv[1]))
uvicorn.Server(uvicorn_config(app, settings, lifespan="off")).run()
"""

GRPC_SERVER = """
import asyncio, sys
import grpc

async def echo(request, context):
    return request

async def main() -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("floor.Echo", {"Echo": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    await server.start()
    await server.wait_for_termination()

asyncio.run(main())
"""

CONSUMER = """
import sys, time
from cqcommon.inbox import ConsumerConfig
from cqcommon.kafka import make_consumer
from cqcommon.settings import Settings

bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = make_consumer(
    Settings(kafka_bootstrap_servers=bootstrap), group_id="floor", client_id="floor"
)
consumer.subscribe([topic])
interval = ConsumerConfig().commit_interval_s
seen, last_commit = 0, float("-inf")
print("ready", flush=True)
cpu0 = None
while seen < expected:
    batches = consumer.poll(timeout_ms=1000)
    for records in batches.values():
        if cpu0 is None:
            cpu0 = time.process_time()
        seen += len(records)
    # as EventConsumer does: offsets without waiting, at most every commit_interval_s
    if batches and time.monotonic() - last_commit >= interval:
        consumer.commit_async()
        last_commit = time.monotonic()
cpu = time.process_time() - (cpu0 or time.process_time())
consumer.close()
print(f"{cpu} {seen}", flush=True)
"""


@dataclass(frozen=True)
class Costs:
    """CPU ms of one unit of each piece of plumbing (client + server where both are ours)."""

    http_ms: float
    rpc_ms: float
    statement_ms: float
    event_ms: float

    def floor(self, http: float, rpcs: float, statements: float, events: float) -> float:
        return (
            http * self.http_ms
            + rpcs * self.rpc_ms
            + statements * self.statement_ms
            + events * self.event_ms
        )


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def start(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def measure_http(calls: int) -> float:
    port = free_port()
    server = start(HTTP_SERVER, str(port))
    try:
        wait_for_port(port)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            for _ in range(200):  # warm-up
                async with session.get("/floor") as answer:
                    await answer.read()
            before = cpu_s(server.pid)
            for _ in range(calls):
                async with session.get("/floor") as answer:
                    await answer.read()
            return (cpu_s(server.pid) - before) * 1000 / calls
    finally:
        stop(server)


async def measure_grpc(calls: int) -> float:
    port = free_port()
    server = start(GRPC_SERVER, str(port))
    try:
        wait_for_port(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(
                "/floor.Echo/Echo", request_serializer=None, response_deserializer=None
            )
            payload = b"x" * 200
            for _ in range(200):
                await echo(payload)
            before, mine = cpu_s(server.pid), time.process_time()
            for _ in range(calls):
                await echo(payload)
            client = time.process_time() - mine
            return (cpu_s(server.pid) - before + client) * 1000 / calls
    finally:
        stop(server)


async def measure_sql(url: str, calls: int) -> tuple[float, float]:
    """(CPU ms per statement, of which the backend's)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TEMP TABLE floor (id int PRIMARY KEY, name text)")
        await conn.execute("INSERT INTO floor SELECT g, 'n' || g FROM generate_series(1, 1000) g")
        backend = conn.info.backend_pid
        for i in range(200):
            cur = await conn.execute("SELECT name FROM floor WHERE id = %s", (i % 1000 + 1,))
            await cur.fetchone()
        before, mine = cpu_s(backend), time.process_time()
        for i in range(calls):
            cur = await conn.execute("SELECT name FROM floor WHERE id = %s", (i % 1000 + 1,))
            await cur.fetchone()
        client = time.process_time() - mine
        server = cpu_s(backend) - before
    return (client + server) * 1000 / calls, server * 1000 / calls


def measure_events(events: int, rate: float) -> float:
    from cqcommon.kafka import ensure_topics, make_producer
    from cqcommon.settings import Settings
    from cqdev.stack import start_own_kafka

    broker = start_own_kafka(bench_dir() / "floor-kafka.log")
    consumer: subprocess.Popen[bytes] | None = None
    try:
        assert broker.process is not None
        settings = Settings(kafka_bootstrap_servers=broker.url)
        topic = "floor.events"
        ensure_topics(settings, [topic])
        consumer = start(CONSUMER, broker.url, topic, str(events))
        assert consumer.stdout is not None
        consumer.stdout.readline()  # ready: subscribed
        producer = make_producer(settings, client_id="floor")
        time.sleep(3)  # the group's first rebalance
        broker_before = cpu_s(broker.process.pid)
        gap = 1.0 / rate
        start_at = time.monotonic()
        for i in range(events):
            producer.send(topic, value=b"x" * 300, key=str(i % 64).encode())
            producer.flush()  # the relay flushes after each batch; batches are small here
            delay = start_at + (i + 1) * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        out, _ = consumer.communicate(timeout=60)
        broker_cpu = cpu_s(broker.process.pid) - broker_before
        consumer_cpu, seen = out.decode().split()
        producer.close()
        print(
            f"  ({seen} events: consumer {float(consumer_cpu) * 1000 / int(seen):.3f},"
            f" broker {broker_cpu * 1000 / int(seen):.3f} CPU ms each)",
            flush=True,
        )
        return (float(consumer_cpu) + broker_cpu) * 1000 / int(seen)
    finally:
        if consumer is not None and consumer.poll() is None:
            stop(consumer)
        broker.close()


def parse_counts(text: str) -> tuple[float, float, float, float]:
    http, rpcs, statements, events = (float(x) for x in text.split(","))
    return http, rpcs, statements, events


def report(name: str, costs: Costs, counts: tuple[float, float, float, float], rate: int) -> None:
    http, rpcs, statements, events = counts
    floor = costs.floor(http, rpcs, statements, events)
    budget = CORES * 1000 / rate
    print(
        f"  {name}: {http:g} HTTP x {costs.http_ms:.2f} + {rpcs:g} RPCs x {costs.rpc_ms:.2f}"
        f" + {statements:g} statements x {costs.statement_ms:.3f}"
        f" + {events:g} events x {costs.event_ms:.2f} = {floor:.1f} CPU ms at least;"
        f" {rate}/s on {CORES} cores leaves {budget:.1f} ms for everything"
        f" -> at most {CORES * 1000 / floor:.0f}/s from the plumbing alone"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--event-rate", type=float, default=100.0)
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument(
        "--handling",
        type=parse_counts,
        default=(4.1, 4.1, 29.8, 2.6),
        help="HTTP requests, RPCs, statements, events consumed per handling",
    )
    parser.add_argument(
        "--payment",
        type=parse_counts,
        default=(3.0, 3.0, 26.2, 2.0),
        help="HTTP requests, RPCs, statements, events consumed per payment",
    )
    args = parser.parse_args(argv)
    url = args.pg_server
    with tempfile.TemporaryDirectory(prefix="cqfloor-"):
        http_ms = asyncio.run(measure_http(args.calls))
        print(f"HTTP request (FastAPI + uvicorn, server side): {http_ms:.3f} CPU ms", flush=True)
        rpc_ms = asyncio.run(measure_grpc(args.calls))
        print(f"gRPC unary call (grpc.aio, client + server): {rpc_ms:.3f} CPU ms", flush=True)
        statement_ms, backend_ms = asyncio.run(measure_sql(url, args.calls))
        print(
            f"SQL statement (psycopg async + backend): {statement_ms:.3f} CPU ms"
            f" (backend {backend_ms:.3f})",
            flush=True,
        )
        event_ms = measure_events(args.events, args.event_rate)
        print(
            f"event consumed at {args.event_rate:g}/s (kafka-python consumer + Tansu):"
            f" {event_ms:.3f} CPU ms",
            flush=True,
        )
    costs = Costs(http_ms, rpc_ms, statement_ms, event_ms)
    print("floor (a lower bound: see the module docstring for what it leaves out):")
    report("handling", costs, args.handling, 150)
    report("payment", costs, args.payment, 200)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
