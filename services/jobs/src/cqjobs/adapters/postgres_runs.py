"""The run records in ``jobs.runs`` (migration 0001), on the jobs schema's pool."""

from __future__ import annotations

from datetime import date
from typing import Any

from cqcommon.db import Database

from cqjobs.domain.runs import RunRecord, RunState

_COLUMNS = (
    "run_id, job, service, night, started_at, ended_at, state, items_done, errors, batches,"
    " checkpoint, message, forced, resumed_from"
)


def _record(row: tuple[Any, ...]) -> RunRecord:
    (run_id, job, service, night, started, ended, state, items, errors, batches, checkpoint,
     message, forced, resumed_from) = row  # fmt: skip
    return RunRecord(
        run_id=str(run_id),
        job=job,
        service=service,
        night=night,
        started_at=started,
        ended_at=ended,
        state=RunState(state),
        items_done=items,
        errors=errors,
        batches=batches,
        checkpoint=checkpoint,
        message=message,
        forced=forced,
        resumed_from=str(resumed_from) if resumed_from is not None else None,
    )


class PostgresRunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def latest(self, job: str, night: date) -> RunRecord | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE job = %s AND night = %s"
                " ORDER BY started_at DESC, run_id DESC LIMIT 1",
                (job, night),
            )
            row = await cur.fetchone()
        return _record(row) if row is not None else None

    async def create(self, run: RunRecord) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                f"INSERT INTO runs ({_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    run.run_id,
                    run.job,
                    run.service,
                    run.night,
                    run.started_at,
                    run.ended_at,
                    run.state.value,
                    run.items_done,
                    run.errors,
                    run.batches,
                    run.checkpoint,
                    run.message,
                    run.forced,
                    run.resumed_from,
                ),
            )

    async def save(self, run: RunRecord) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET ended_at = %s, state = %s, items_done = %s, errors = %s,"
                " batches = %s, checkpoint = %s, message = %s WHERE run_id = %s",
                (
                    run.ended_at,
                    run.state.value,
                    run.items_done,
                    run.errors,
                    run.batches,
                    run.checkpoint,
                    run.message,
                    run.run_id,
                ),
            )

    async def list_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        async with self.db.connection() as conn:
            if job is None:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT %s",
                    (limit,),
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM runs WHERE job = %s"
                    " ORDER BY started_at DESC, run_id DESC LIMIT %s",
                    (job, limit),
                )
            rows = await cur.fetchall()
        return [_record(row) for row in rows]
