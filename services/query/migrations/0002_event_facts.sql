-- Facts from events that can arrive before the row they refer to. Events travel on
-- different topics (payment vs adjudication, points vs registry), so Kafka orders them
-- only within one topic's partition. Each such fact gets its own table keyed by what it
-- refers to; the violation's shown columns (status, decision, licence, disputed) are
-- then recomputed from all facts whenever one arrives, whichever came first.

-- What adjudication recorded (the shown columns can be overridden by later facts).
ALTER TABLE violations
    ADD COLUMN recorded_status        text,
    ADD COLUMN recorded_licence_id    uuid,
    ADD COLUMN recorded_decision_no   text,
    ADD COLUMN recorded_decision_date date,
    ADD COLUMN recorded_fine_fen      bigint,
    ADD COLUMN recorded_points        integer,
    ADD COLUMN paid_at                timestamptz;
UPDATE violations SET
    recorded_status = status,
    recorded_licence_id = licence_id,
    recorded_decision_no = decision_no,
    recorded_decision_date = decision_date,
    recorded_fine_fen = fine_fen,
    recorded_points = points;
ALTER TABLE violations
    ALTER COLUMN recorded_status SET NOT NULL,
    ALTER COLUMN recorded_fine_fen SET NOT NULL,
    ALTER COLUMN recorded_points SET NOT NULL;
-- the unpaid list of a licence or vehicle (R-Q-5) and the counts on /me
CREATE INDEX violations_vehicle_status_idx ON violations (vehicle_id, status);
CREATE INDEX violations_licence_status_idx ON violations (licence_id, status)
    WHERE licence_id IS NOT NULL;

-- ViolationHandled: the decision issued by handling (online or at a counter).
CREATE TABLE violation_handlings (
    violation_id       uuid PRIMARY KEY,
    handling_id        text NOT NULL,
    decision_no        text NOT NULL,
    decision_date      date NOT NULL,
    handler_person_id  uuid,
    handler_licence_id uuid,
    fine_fen           bigint NOT NULL,
    points             integer NOT NULL,
    channel            text NOT NULL
);

-- ViolationDisputed / ViolationUndisputed: the latest by event time wins.
CREATE TABLE violation_disputes (
    violation_id uuid PRIMARY KEY,
    disputed     boolean NOT NULL,
    as_of        timestamptz NOT NULL
);

-- FinePaid / PaymentRefunded. A violation is paid while one payment is not refunded
-- (R-PAY-5: a duplicate payment's refund leaves it paid).
CREATE TABLE violation_payments (
    payment_id   text PRIMARY KEY,
    violation_id uuid NOT NULL,
    decision_no  text NOT NULL,
    amount_fen   bigint,
    paid_at      timestamptz,
    channel      text,
    refund_id    text,
    refunded_at  timestamptz
);
CREATE INDEX violation_payments_violation_idx ON violation_payments (violation_id);

-- PointsChanged: points are absolute (points_after), so the latest by event time wins;
-- a row may exist before the licence's DriverRegistered arrives.
CREATE TABLE licence_points (
    licence_id  uuid PRIMARY KEY,
    points      integer NOT NULL,
    cycle_start date,
    cycle_end   date,
    channel     text NOT NULL,
    as_of       timestamptz NOT NULL
);

-- FollowStarted / FollowEnded: a follow ended stays ended (an ended-then-started
-- redelivery cannot revive it); SMS-consented follows expire (R-FOL-5).
ALTER TABLE follows
    ADD COLUMN target      text,
    ADD COLUMN consent     text,
    ADD COLUMN started_at  timestamptz,
    ADD COLUMN expires_at  timestamptz,
    ADD COLUMN ended_at    timestamptz,
    ADD COLUMN end_reason  text;
ALTER TABLE follows ALTER COLUMN follower_user_id DROP NOT NULL;
CREATE INDEX follows_vehicle_idx ON follows (vehicle_id) WHERE active;
CREATE INDEX follows_licence_idx ON follows (licence_id) WHERE active;
CREATE INDEX follows_person_idx ON follows (follower_person_id) WHERE active;
