-- Fine payment (R-PAY-1..9): the registry copy and violation facts payment needs, payable
-- decisions, payments, idempotency keys, provider notifications, duplicate refunds and
-- feedback. Every constraint is named: cqpayment.adapters.constraints maps each name to the
-- answer a request that hits it gets (or says why no request reaches it).

-- Registry copy (registry events): only what a decision shows, the party's name and plate.
CREATE TABLE persons (
    person_id uuid NOT NULL,
    name      text NOT NULL,
    CONSTRAINT persons_pkey PRIMARY KEY (person_id)
);

CREATE TABLE vehicles (
    vehicle_id      uuid NOT NULL,
    owner_person_id uuid NOT NULL,
    plate_number    text NOT NULL,
    CONSTRAINT vehicles_pkey PRIMARY KEY (vehicle_id)
);

CREATE TABLE licences (
    licence_id uuid NOT NULL,
    person_id  uuid NOT NULL,
    CONSTRAINT licences_pkey PRIMARY KEY (licence_id)
);

-- The facts of every recorded violation (ViolationRecorded): a decision issued later
-- (ViolationHandled carries only the decision) takes them from here. disputed follows
-- ViolationDisputed / ViolationUndisputed, so a decision issued while disputed is born so.
CREATE TABLE violations (
    violation_id   uuid        NOT NULL,
    vehicle_id     uuid        NOT NULL,
    licence_id     uuid,
    plate_number   text        NOT NULL,
    violation_code text        NOT NULL,
    description_zh text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    place          text        NOT NULL,
    fine_fen       bigint      NOT NULL,
    points         integer     NOT NULL,
    disputed       boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT violations_pkey PRIMARY KEY (violation_id)
);

-- Payable decisions (R-PAY-1). The violation's facts are copied in when known (they are
-- NULL only while ViolationRecorded has not arrived yet); party_person_id is NULL while the
-- registry copy does not know the licence holder / vehicle owner yet.
CREATE TABLE decisions (
    decision_no     text        NOT NULL,
    violation_id    uuid        NOT NULL,
    decision_date   date        NOT NULL,
    fine_fen        bigint      NOT NULL,
    points          integer     NOT NULL,
    party_person_id uuid,
    vehicle_id      uuid        NOT NULL,
    licence_id      uuid,
    plate_number    text,
    violation_code  text,
    description_zh  text,
    occurred_at     timestamptz,
    place           text,
    disputed        boolean     NOT NULL DEFAULT false,
    learned_from    text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT decisions_pkey PRIMARY KEY (decision_no),
    CONSTRAINT decisions_violation_unique UNIQUE (violation_id),
    CONSTRAINT decisions_decision_no_format CHECK (decision_no ~ '^[0-9]{16}$'),
    CONSTRAINT decisions_fine_nonnegative CHECK (fine_fen >= 0),
    CONSTRAINT decisions_learned_from_known CHECK (learned_from IN ('handled', 'recorded'))
);

-- Payments. amount_fen is fixed at creation (fine + late fee of that day, R-PAY-2);
-- out_trade_no is random (date + 24 hex digits), never derived from personal data.
CREATE TABLE payments (
    payment_id        uuid        NOT NULL,
    decision_no       text        NOT NULL,
    violation_id      uuid        NOT NULL,
    channel           text        NOT NULL,
    state             text        NOT NULL,
    amount_fen        bigint      NOT NULL,
    fine_fen          bigint      NOT NULL,
    late_fee_fen      bigint      NOT NULL,
    out_trade_no      text        NOT NULL,
    provider_trade_no text,
    payer_user_id     text,
    payer_person_id   uuid,
    staff_id          text,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    paid_at           timestamptz,
    failure_reason    text,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT payments_pkey PRIMARY KEY (payment_id),
    CONSTRAINT payments_decision_fk FOREIGN KEY (decision_no) REFERENCES decisions (decision_no),
    CONSTRAINT payments_out_trade_no_unique UNIQUE (out_trade_no),
    CONSTRAINT payments_provider_trade_no_unique UNIQUE (provider_trade_no),
    CONSTRAINT payments_channel_known
        CHECK (channel IN ('alipay', 'counter_cash', 'counter_card')),
    CONSTRAINT payments_state_known
        CHECK (state IN ('pending', 'succeeded', 'failed', 'duplicate', 'refunded')),
    CONSTRAINT payments_amount_positive CHECK (amount_fen > 0),
    CONSTRAINT payments_amount_sum
        CHECK (fine_fen >= 0 AND late_fee_fen >= 0 AND amount_fen = fine_fen + late_fee_fen),
    CONSTRAINT payments_paid_when_settled
        CHECK (state NOT IN ('succeeded', 'duplicate', 'refunded') OR paid_at IS NOT NULL),
    CONSTRAINT payments_payer_known CHECK (
        (channel = 'alipay' AND payer_user_id IS NOT NULL)
        OR (channel <> 'alipay' AND staff_id IS NOT NULL)
    )
);
-- R-PAY-3: the database, not only the code, forbids a second payment in progress or a
-- second success for one decision.
CREATE UNIQUE INDEX payments_one_pending_per_decision ON payments (decision_no)
    WHERE state = 'pending';
CREATE UNIQUE INDEX payments_one_succeeded_per_decision ON payments (decision_no)
    WHERE state = 'succeeded';
CREATE INDEX payments_decision_idx ON payments (decision_no);
-- R-JOB-1: the pending-payment job pages by (created_at, payment_id).
CREATE INDEX payments_pending_idx ON payments (created_at, payment_id) WHERE state = 'pending';

-- R-PAY-3: client idempotency keys, per caller scope and operation, with the request's
-- fingerprint and the first response (the serialized Payment message).
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    operation    text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    state        text        NOT NULL,
    payment_id   uuid,
    response     bytea,
    locked_at    timestamptz,
    created_at   timestamptz NOT NULL,
    completed_at timestamptz,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, operation, key),
    CONSTRAINT idempotency_keys_payment_fk FOREIGN KEY (payment_id)
        REFERENCES payments (payment_id),
    CONSTRAINT idempotency_keys_operation_known
        CHECK (operation IN ('create_payment', 'counter_payment')),
    CONSTRAINT idempotency_keys_state_known CHECK (state IN ('in_flight', 'completed')),
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_completed_response CHECK (
        state <> 'completed' OR (response IS NOT NULL AND completed_at IS NOT NULL)
    )
);
CREATE INDEX idempotency_keys_completed_idx ON idempotency_keys (completed_at)
    WHERE state = 'completed';
CREATE INDEX idempotency_keys_in_flight_idx ON idempotency_keys (created_at)
    WHERE state = 'in_flight';

-- R-PAY-7: accepted provider notifications (a notify_id applies once) ...
CREATE TABLE notifications (
    notify_id    text        NOT NULL,
    out_trade_no text        NOT NULL,
    trade_state  text        NOT NULL,
    received_at  timestamptz NOT NULL,
    CONSTRAINT notifications_pkey PRIMARY KEY (notify_id)
);

-- ... and rejected ones, logged and counted (no payload: it may be forged or personal).
CREATE TABLE rejected_notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    received_at  timestamptz NOT NULL,
    reason       text        NOT NULL,
    out_trade_no text,
    CONSTRAINT rejected_notifications_pkey PRIMARY KEY (id)
);
CREATE INDEX rejected_notifications_received_idx ON rejected_notifications (received_at);

-- R-PAY-5: one refund per duplicate payment; out_request_no is stable, so a retried
-- approval moves no money twice.
CREATE TABLE refunds (
    refund_id      uuid        NOT NULL,
    payment_id     uuid        NOT NULL,
    decision_no    text        NOT NULL,
    amount_fen     bigint      NOT NULL,
    reason         text        NOT NULL,
    state          text        NOT NULL,
    out_request_no text        NOT NULL,
    approved_by    text,
    created_at     timestamptz NOT NULL,
    approved_at    timestamptz,
    refunded_at    timestamptz,
    CONSTRAINT refunds_pkey PRIMARY KEY (refund_id),
    CONSTRAINT refunds_payment_unique UNIQUE (payment_id),
    CONSTRAINT refunds_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (payment_id),
    CONSTRAINT refunds_out_request_no_unique UNIQUE (out_request_no),
    CONSTRAINT refunds_reason_known CHECK (reason IN ('duplicate')),
    CONSTRAINT refunds_state_known
        CHECK (state IN ('pending_approval', 'approved', 'refunded', 'failed')),
    CONSTRAINT refunds_amount_positive CHECK (amount_fen > 0),
    CONSTRAINT refunds_approved_by_supervisor
        CHECK (state = 'pending_approval' OR (approved_by IS NOT NULL AND approved_at IS NOT NULL))
);
CREATE INDEX refunds_state_idx ON refunds (state, created_at);

-- R-PAY-9: users' feedback on a payment.
CREATE TABLE feedback (
    feedback_id uuid        NOT NULL,
    payment_id  uuid        NOT NULL,
    user_id     text        NOT NULL,
    text        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT feedback_pkey PRIMARY KEY (feedback_id),
    CONSTRAINT feedback_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (payment_id),
    CONSTRAINT feedback_text_length CHECK (char_length(text) BETWEEN 1 AND 500)
);
CREATE INDEX feedback_payment_idx ON feedback (payment_id);
CREATE INDEX feedback_newest_idx ON feedback (created_at DESC, feedback_id DESC);
