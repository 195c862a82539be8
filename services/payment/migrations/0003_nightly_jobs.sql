-- Payment's nightly jobs (issue 11): the reconciliation of a day's online payments with
-- the provider's statement (R-JOB-2), the overdue mark and its one SMS (R-JOB-6), and the
-- phone of the registry copy's persons the SMS goes to. Every constraint is named:
-- cqpayment.adapters.constraints maps each (only the jobs and the registry consumer write
-- these columns, never a request).

-- R-JOB-6: the party's phone on record (PersonRegistered.phone), NULL when the registry has
-- none: such a party's overdue decision is marked without an SMS.
ALTER TABLE persons ADD COLUMN phone text;

-- R-JOB-6: overdue_notice says what the job did about a decision from its 16th day:
--   'claimed'  the SMS is being sent (claimed in one transaction, sent after the commit;
--              left so if the process died in between: the notice is sent at most once)
--   'sms_sent' the SMS went out (overdue_sms_id: the gateway's id of it)
--   'no_phone' marked, no SMS: the party has no phone on record
--   'paid'     paid by the time the job looked: nothing to notify
-- overdue_marked_at is when. A failed send puts both back to NULL, so the next night
-- tries again.
ALTER TABLE decisions
    ADD COLUMN overdue_marked_at timestamptz,
    ADD COLUMN overdue_notice    text,
    ADD COLUMN overdue_sms_id    text,
    ADD CONSTRAINT decisions_overdue_notice_known
        CHECK (overdue_notice IN ('claimed', 'sms_sent', 'no_phone', 'paid')),
    ADD CONSTRAINT decisions_overdue_marked_together
        CHECK ((overdue_notice IS NULL) = (overdue_marked_at IS NULL)),
    ADD CONSTRAINT decisions_overdue_sms_id_when_sent
        CHECK (overdue_sms_id IS NULL OR overdue_notice = 'sms_sent');
-- The job pages by (decision_date, decision_no) over decisions it has not decided about;
-- the index holds those only (about 16 days of decisions plus the unpaid overdue ones), so
-- a night's scan does not grow with the years of paid decisions behind it.
CREATE INDEX decisions_overdue_open_idx ON decisions (decision_date, decision_no)
    WHERE overdue_notice IS NULL;

-- R-JOB-2: our paid online payments of a day, read by the reconciliation.
CREATE INDEX payments_paid_online_idx ON payments (paid_at)
    WHERE channel = 'alipay' AND paid_at IS NOT NULL;

-- R-JOB-2: one row per reconciled Asia/Shanghai day (a rerun replaces it and its
-- mismatches in one transaction).
CREATE TABLE reconciliation_days (
    day             date        NOT NULL,
    completed_at    timestamptz NOT NULL,
    statement_lines integer     NOT NULL,
    our_payments    integer     NOT NULL,
    matched         integer     NOT NULL,
    ours_only       integer     NOT NULL,
    theirs_only     integer     NOT NULL,
    amount_differs  integer     NOT NULL,
    CONSTRAINT reconciliation_days_pkey PRIMARY KEY (day),
    CONSTRAINT reconciliation_days_counts_nonnegative CHECK (
        statement_lines >= 0 AND our_payments >= 0 AND matched >= 0 AND ours_only >= 0
        AND theirs_only >= 0 AND amount_differs >= 0
    )
);

-- R-JOB-2: what staff look at. ours_only: we hold the payment paid, the statement lacks
-- it; theirs_only: the statement has a trade we do not hold paid (a lost notification: the
-- pending-payment job heals it, R-JOB-1); amount_differs: both, different amounts.
CREATE TABLE reconciliation_mismatches (
    day              date   NOT NULL,
    kind             text   NOT NULL,
    out_trade_no     text   NOT NULL,
    our_amount_fen   bigint,
    their_amount_fen bigint,
    CONSTRAINT reconciliation_mismatches_pkey PRIMARY KEY (day, out_trade_no),
    CONSTRAINT reconciliation_mismatches_day_fk FOREIGN KEY (day)
        REFERENCES reconciliation_days (day) ON DELETE CASCADE,
    CONSTRAINT reconciliation_mismatches_kind_known
        CHECK (kind IN ('ours_only', 'theirs_only', 'amount_differs')),
    CONSTRAINT reconciliation_mismatches_amounts CHECK (
        (kind = 'ours_only' AND our_amount_fen IS NOT NULL AND their_amount_fen IS NULL)
        OR (kind = 'theirs_only' AND our_amount_fen IS NULL AND their_amount_fen IS NOT NULL)
        OR (kind = 'amount_differs' AND our_amount_fen IS NOT NULL
            AND their_amount_fen IS NOT NULL AND our_amount_fen <> their_amount_fen)
    )
);
