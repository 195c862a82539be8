"""Fault drills (issue 12): a fault under a steady load, then what was lost, doubled and failed.

    .venv/bin/python bench/drills/run.py [--drill broker-pause|consumer-kill|relay-kill|
        postgres-restart|redis-restart|all] [--rate 20] [--fault-seconds N]
        [--warmup-seconds 10] [--after-seconds 20] [--drain-timeout 180]

Each drill starts its own PostgreSQL, Redis and Tansu on free ports and the cluster on them
(``drillkit.DrillStack``; adjudication's relay and query's read-model consumer run as
processes of their own), loads it with ``--rate`` counter requests a second that each
record a violation (``ViolationRecorded``: adjudication's outbox → relay → Kafka → query's
read model), injects its fault, keeps the load on for ``--after-seconds``, waits (bounded)
for the events to drain, and prints:

- events produced (the load's rows in adjudication's outbox), applied (the read-model
  consumer's inbox rows for them), lost (produced − applied, plus any 2xx answer without an
  event; must be 0), applied twice (inbox rows beyond one per event and read-model rows
  beyond one per request; must be 0), events published more than once (the relay re-sent
  them; the inbox must absorb them);
- requests sent and failed, those sent during the fault by status and error code, and
  any 500 (must be none: a fault answers 503 with the error body);
- recovery: fault end → first successful request, → last failed request, → backlog
  drained (every load event written up to the fault's end applied by the read model);
- the outbox → applied lag before the fault and its worst value.

The faults (``--fault-seconds`` overrides each default):

- ``broker-pause``: SIGSTOP Tansu for 60 s, then SIGCONT;
- ``consumer-kill``: SIGSTOP the read-model consumer 5 s (a backlog builds), SIGCONT, SIGKILL
  it as soon as it has applied part of the backlog (mid-batch: the batch's offsets are not
  committed yet), keep it down 10 s, start it again;
- ``relay-kill``: the same with adjudication's relay, SIGKILLed as soon as the broker's end
  offset moves (events sent, not yet marked sent in the outbox), down 10 s, restarted;
- ``postgres-restart``: fast shutdown of the drill's PostgreSQL, start it on the same port
  and data dir (down 0 s beyond the restart itself);
- ``redis-restart``: stop the drill's redis-server (no persistence: every key is lost),
  start it on the same port (down 0 s beyond the restart).

Exit code 0 only if every drill run had lost == 0 and applied twice == 0. Each drill has a
hard timeout and stops all its processes and deletes its data dir on exit, Ctrl-C, SIGTERM
and errors. Logs: ``.local/bench/drills/<drill>/``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from drillkit import (
    READ_MODEL_GROUP,
    VIOLATION_TOPIC,
    Counts,
    DrillAborted,
    DrillStack,
    LoadGenerator,
    RequestSummary,
    Tally,
    committed_offsets,
    discover_target,
    fmt_counter,
    fmt_s,
    hard_limits,
    lag_line,
    say,
    staff_headers,
    summarize_requests,
    tally,
    topic_copies,
    try_db,
)

DRILLS = ("broker-pause", "consumer-kill", "relay-kill", "postgres-restart", "redis-restart")
DEFAULT_FAULT_S = {
    "broker-pause": 60.0,
    "consumer-kill": 10.0,
    "relay-kill": 10.0,
    "postgres-restart": 0.0,
    "redis-restart": 0.0,
}
#: how long the consumer / relay is frozen before the kill, so it dies inside a batch
STALL_S = 5.0
Notes = dict[str, str]


# --------------------------------------------------------------------------------------
# the faults
# --------------------------------------------------------------------------------------


def _kill(stack: DrillStack, name: str) -> None:
    proc = stack.owned[name]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)


def _stall(stack: DrillStack, name: str) -> int:
    pid = stack.owned[name].pid
    os.kill(pid, signal.SIGSTOP)
    time.sleep(STALL_S)
    return pid


def broker_pause(stack: DrillStack, counts: Counts, fault_s: float, notes: Notes) -> None:
    published = counts.published_count()
    stack.pause_broker(fault_s)
    notes["events published while the broker was paused"] = str(
        counts.published_count() - published
    )


def consumer_kill(stack: DrillStack, counts: Counts, fault_s: float, notes: Notes) -> None:
    name = "query-consume"
    pid = _stall(stack, name)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:

        def applied() -> int:
            row = conn.execute(
                "SELECT count(*) FROM query.inbox WHERE consumer_group = %s", (READ_MODEL_GROUP,)
            ).fetchone()
            return int(row[0]) if row else 0

        def pending() -> int:
            row = conn.execute(
                "SELECT count(*) FROM adjudication.outbox o WHERE NOT EXISTS (SELECT 1 FROM"
                " query.inbox i WHERE i.consumer_group = %s AND i.event_id = o.event_id)"
                " AND o.event_type LIKE 'cqtraffic.adjudication.%%'"
                " AND o.published_at IS NOT NULL",
                (READ_MODEL_GROUP,),
            ).fetchone()
            return int(row[0]) if row else 0

        before, backlog = applied(), pending()
        os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while applied() == before and time.monotonic() < deadline:
            time.sleep(0.001)
        _kill(stack, name)
        notes["backlog when the consumer resumed"] = f"{backlog} events"
        notes["applied before the SIGKILL"] = f"{applied() - before} of them"
    try:
        committed = committed_offsets(stack.env["KAFKA_BOOTSTRAP_SERVERS"], READ_MODEL_GROUP)
        notes["applied but not committed at the kill (Kafka redelivers them)"] = str(
            counts.redelivered_after(committed)
        )
    except Exception as exc:  # an informative figure only
        notes["committed offsets"] = f"not read: {exc!r}"
    time.sleep(fault_s)
    stack.start_owned(name)


def relay_kill(stack: DrillStack, counts: Counts, fault_s: float, notes: Notes) -> None:
    from kafka import KafkaConsumer, TopicPartition

    name = "adjudication-relay"
    reader = KafkaConsumer(
        bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"], client_id="drill-offsets"
    )
    try:
        tps = [
            TopicPartition(VIOLATION_TOPIC, p)
            for p in sorted(reader.partitions_for_topic(VIOLATION_TOPIC) or ())
        ]

        def end() -> int:
            return sum(reader.end_offsets(tps).values())

        pid = _stall(stack, name)
        before, published = end(), counts.published_count()
        os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while end() == before and time.monotonic() < deadline:
            pass  # each end_offsets call is a broker round trip
        _kill(stack, name)
        on_topic = end() - before
    finally:
        reader.close()
    notes["sent to the broker when the relay was killed"] = f"{on_topic} events"
    notes["marked sent in the outbox by then"] = str(counts.published_count() - published)
    time.sleep(fault_s)
    stack.start_owned(name)


def postgres_restart(stack: DrillStack, counts: Counts, fault_s: float, notes: Notes) -> None:
    t0 = time.monotonic()
    stack.restart_postgres(fault_s)
    notes["PostgreSQL down (stop + start)"] = f"{time.monotonic() - t0:.2f} s"


def redis_restart(stack: DrillStack, counts: Counts, fault_s: float, notes: Notes) -> None:
    families = stack.redis_key_families()
    t0 = time.monotonic()
    stack.restart_redis(fault_s)
    notes["Redis down (stop + start)"] = f"{time.monotonic() - t0:.2f} s"
    notes["keys lost by the restart, by family"] = fmt_counter(families)


FAULTS: dict[str, Callable[[DrillStack, Counts, float, Notes], None]] = {
    "broker-pause": broker_pause,
    "consumer-kill": consumer_kill,
    "relay-kill": relay_kill,
    "postgres-restart": postgres_restart,
    "redis-restart": redis_restart,
}


# --------------------------------------------------------------------------------------
# one drill
# --------------------------------------------------------------------------------------


@dataclass
class DrillResult:
    drill: str
    fault_s: float
    requests: RequestSummary | None = None
    events: Tally | None = None
    drained_after_s: float | None = None
    first_applied_after_s: float | None = None  # fault end -> the read model applies again
    backlog_at_fault_end: int = 0
    republished: int = 0
    notes: Notes = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False
    load_avg: tuple[float, float] = (0.0, 0.0)

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.events is not None
            and self.events.lost == 0
            and self.events.applied_twice == 0
        )


def _retry_db(fn: Callable[[], int], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        value = try_db(fn)
        if value >= 0 or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def run_drill(drill: str, args: argparse.Namespace) -> DrillResult:
    fault_s = args.fault_seconds if args.fault_seconds is not None else DEFAULT_FAULT_S[drill]
    result = DrillResult(drill, fault_s)
    budget = 420 + args.warmup_seconds + fault_s + STALL_S + args.after_seconds
    budget += args.drain_timeout
    say(f"== drill {drill}: fault {fault_s:.0f} s, load {args.rate:g} req/s, limit {budget:.0f} s")
    load_start = os.getloadavg()[0]
    run_id = uuid.uuid4().hex[:8]
    stack = DrillStack(drill)
    try:
        with hard_limits(budget):
            stack.start()
            _exercise(stack, drill, fault_s, run_id, args, result)
    except (Exception, DrillAborted, KeyboardInterrupt) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        # a signal ends the whole run; the hard timeout ends only this drill
        result.interrupted = not isinstance(exc, Exception) and "timeout" not in str(exc)
        say(f"drill {drill} failed: {result.error}")
    finally:
        say("stopping the drill's cluster and servers ...")
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            stack.close()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    result.load_avg = (load_start, os.getloadavg()[0])
    report(result, args)
    return result


def _exercise(
    stack: DrillStack,
    drill: str,
    fault_s: float,
    run_id: str,
    args: argparse.Namespace,
    result: DrillResult,
) -> None:
    target = discover_target(stack.database_url)
    headers = staff_headers(stack.gateway_url)
    counts = Counts(stack.database_url, run_id)
    load = LoadGenerator(stack.gateway_url, headers, target, rate=args.rate, run_id=run_id)
    load.start()
    try:
        say(f"load on ({len(target.plates)} roster vehicles); warm-up {args.warmup_seconds:g} s")
        time.sleep(args.warmup_seconds)
        stack.check_alive()
        baseline_mark = counts.outbox_mark()
        say(f"fault: {drill}")
        fault_start = time.monotonic()
        FAULTS[drill](stack, counts, fault_s, result.notes)
        fault_end = time.monotonic()
        say(f"fault over after {fault_end - fault_start:.1f} s; watching the recovery")
        mark = _retry_db(counts.outbox_mark, 60)
        result.backlog_at_fault_end = _retry_db(lambda: counts.backlog_left(mark), 60)
        applied_at_end = _retry_db(counts.applied_count, 60)
        stop_load_at = fault_end + args.after_seconds
        give_up_at = fault_end + args.after_seconds + args.drain_timeout
        while time.monotonic() < give_up_at:
            now = time.monotonic()
            if result.drained_after_s is None and try_db(lambda: counts.backlog_left(mark)) == 0:
                result.drained_after_s = now - fault_end
            if result.first_applied_after_s is None and try_db(counts.applied_count) > (
                applied_at_end
            ):
                result.first_applied_after_s = now - fault_end
            if now >= stop_load_at:
                load.stop()
                if result.drained_after_s is not None:
                    break
            stack.check_alive()
            time.sleep(0.2)
    finally:
        load.stop()
    # every request has its answer: wait (bounded) until the rest is applied too
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        produced = counts.produced()
        applied = counts.inbox_counts(list(produced))
        if len(applied) == len(produced) and counts.unpublished() == 0:
            break
        time.sleep(0.5)
    samples = load.snapshot()
    result.requests = summarize_requests(samples, fault_start, fault_end, len(load.not_sent))
    produced = counts.produced()
    result.events = tally(
        produced,
        counts.inbox_counts(list(produced)),
        counts.read_model_counts(),
        ok_violation_ids={s.violation_id for s in samples if s.ok and s.violation_id},
        failed_seqs={s.seq for s in samples if not s.ok},
        recorded_seqs=counts.recorded_seqs(),
        unpublished=counts.unpublished(),
    )
    copies = topic_copies(stack.env["KAFKA_BOOTSTRAP_SERVERS"], VIOLATION_TOPIC, set(produced))
    result.republished = sum(max(0, n - 1) for n in copies.values())
    result.notes["lag outbox -> applied before the fault"] = lag_line(
        counts.lag_ms(upto=baseline_mark)
    )
    result.notes["lag outbox -> applied, whole run"] = lag_line(counts.lag_ms())


# --------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------


def report(r: DrillResult, args: argparse.Namespace) -> None:
    lines = [
        "",
        f"== {r.drill}: fault {r.fault_s:.0f} s, {args.rate:g} req/s of"
        " POST /internal/v1/violations (clerk01)",
        f"machine load (1 min) at start {r.load_avg[0]:.2f}, at end {r.load_avg[1]:.2f}"
        f" on {os.cpu_count()} cores",
    ]
    if r.error:
        lines.append(f"ERROR: {r.error}")
    q = r.requests
    if q is not None:
        lines += [
            f"requests: sent {q.sent}, failed {q.failed}, 500s {q.server_errors_500} (must be 0),"
            f" not sent (client limit) {q.not_sent}; 2xx latency p50/p99 "
            + ", ".join(f"{k} {v[0]:.0f}/{v[1]:.0f} ms" for k, v in q.latency_ms.items()),
            f"  sent during the fault: {q.sent_during}, failed: "
            f"{sum(q.failed_during.values())} ({fmt_counter(q.failed_during)}); slowest answer"
            f" {q.max_latency_during_ms:.0f} ms",
            f"  sent before the fault and failed (in flight when it began):"
            f" {fmt_counter(q.failed_before)}",
            f"  sent after the fault and failed: {fmt_counter(q.failed_after)}",
        ]
    e = r.events
    if e is not None:
        lines += [
            f"events: produced {e.produced}, applied {e.applied}, lost {e.lost} (must be 0),"
            f" applied twice {e.applied_twice} (must be 0)",
            f"  read-model rows {e.read_model_rows}; still unpublished {e.unpublished};"
            f" 2xx without an event {e.ok_not_produced}; failed answers whose record was"
            f" stored anyway {e.failed_but_recorded}",
            f"  published more than once (relay re-sends, absorbed by the inbox): {r.republished}",
        ]
    if q is not None:
        lines.append(
            f"recovery: fault end -> first 2xx answer {fmt_s(q.first_ok_after_s)},"
            f" -> last failed answer {fmt_s(q.last_fail_after_s)},"
            f" -> first event applied {fmt_s(r.first_applied_after_s)},"
            f" -> backlog drained {fmt_s(r.drained_after_s)}"
            f" ({r.backlog_at_fault_end} events waiting at the fault's end)"
        )
    lines += [f"  {k}: {v}" for k, v in r.notes.items()]
    lines.append(f"RESULT {r.drill}: {'PASS' if r.passed else 'FAIL'}")
    print("\n".join(lines), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drill", choices=[*DRILLS, "all"], default="all")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second")
    parser.add_argument(
        "--fault-seconds", type=float, default=None, help="fault length (default per drill)"
    )
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--after-seconds", type=float, default=20.0)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    drills = DRILLS if args.drill == "all" else (args.drill,)
    results: list[DrillResult] = []
    for drill in drills:
        results.append(run_drill(drill, args))
        if results[-1].interrupted:
            break
    if len(results) > 1:
        print("\nsummary:")
        for r in results:
            e = r.events
            figures = (
                f"produced {e.produced}, applied {e.applied}, lost {e.lost},"
                f" twice {e.applied_twice}"
                if e
                else r.error
            )
            print(f"  {r.drill:<17} {'PASS' if r.passed else 'FAIL'}  {figures}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
