-- R-Q-5 / issue 9: adjudication records a case closed when its fine is paid (FinePaid from the
-- payment service) and open again if that payment is refunded while no other one paid it
-- (R-PAY-5: refunding a duplicate leaves the case paid). One row per payment: events are
-- upserts by payment id, so a redelivered or reordered event changes nothing new.
CREATE TABLE case_payments (
    payment_id   text        NOT NULL,
    violation_id uuid        NOT NULL,
    decision_no  text        NOT NULL,
    paid_at      timestamptz,
    refunded_at  timestamptz,
    CONSTRAINT case_payments_pkey PRIMARY KEY (payment_id)
);
CREATE INDEX case_payments_violation_idx ON case_payments (violation_id);
