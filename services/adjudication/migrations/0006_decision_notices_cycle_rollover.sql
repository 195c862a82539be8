-- Nightly jobs (issue 11): decision notices (R-ADJ-7, R-JOB-3) and the scoring-cycle
-- rollover (R-JOB-5). Every constraint is named: cqadjudication.adapters.constraints says
-- what a request that hits it gets (or why no request reaches it).

-- The printable notice of each decision, made once by the nightly job (or by the first
-- GetDecisionNotice that came before it) and served as stored afterwards.
CREATE TABLE decision_notices (
    decision_no  text        NOT NULL,
    violation_id uuid        NOT NULL,
    content      bytea       NOT NULL,
    generated_at timestamptz NOT NULL,
    CONSTRAINT decision_notices_pkey PRIMARY KEY (decision_no),
    CONSTRAINT decision_notices_violation_fk FOREIGN KEY (violation_id)
        REFERENCES violations (violation_id),
    CONSTRAINT decision_notices_violation_unique UNIQUE (violation_id)
);

-- R-JOB-5: the rollover books its closing and opening entries with a channel of its own.
ALTER TABLE points_entries DROP CONSTRAINT points_entries_channel_known;
ALTER TABLE points_entries ADD CONSTRAINT points_entries_channel_known
    CHECK (channel IN ('online', 'counter', 'other_province', 'registry', 'cycle_rollover'));

-- The rollover's batches walk the ledgers whose cycle has ended, keyed by licence_id.
CREATE INDEX points_ledger_cycle_end_idx ON points_ledger (cycle_end, licence_id);
