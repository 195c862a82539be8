-- The job runner's own schema (R-JOB-*): one row per run of one job. Only cqjobs reads or
-- writes it; staff read it through JobsService.ListRuns (GET /internal/v1/jobs). The
-- runner's cluster-wide lock is a PostgreSQL session advisory lock, not a row: it goes
-- away with the connection that holds it, so a dead runner never leaves a stale lock.
COMMENT ON SCHEMA jobs IS 'cqtraffic nightly job runner: run records and checkpoints';

CREATE TABLE runs (
    run_id       uuid        NOT NULL,
    job          text        NOT NULL,
    service      text        NOT NULL,
    -- the Asia/Shanghai day the window started (22:00 that day to 00:30 the next)
    night        date        NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    state        text        NOT NULL,
    items_done   bigint      NOT NULL DEFAULT 0,
    errors       integer     NOT NULL DEFAULT 0,
    batches      integer     NOT NULL DEFAULT 0,
    -- the last checkpoint the service returned: where a resumed run starts
    checkpoint   text        NOT NULL DEFAULT '',
    message      text        NOT NULL DEFAULT '',
    forced       boolean     NOT NULL DEFAULT false,
    resumed_from uuid,
    CONSTRAINT runs_pkey PRIMARY KEY (run_id),
    CONSTRAINT runs_state_known
        CHECK (state IN ('running', 'completed', 'paused', 'failed')),
    CONSTRAINT runs_ended_unless_running
        CHECK ((state = 'running') = (ended_at IS NULL)),
    CONSTRAINT runs_counts_not_negative
        CHECK (items_done >= 0 AND errors >= 0 AND batches >= 0),
    CONSTRAINT runs_resumed_from_fk
        FOREIGN KEY (resumed_from) REFERENCES runs (run_id)
);

-- the runner's question: the latest run of this job this night
CREATE INDEX runs_job_night_idx ON runs (job, night, started_at DESC);
-- staff's question: the newest runs (of one job)
CREATE INDEX runs_started_idx ON runs (started_at DESC, run_id DESC);
CREATE INDEX runs_job_started_idx ON runs (job, started_at DESC, run_id DESC);
