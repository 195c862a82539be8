-- The query service's read model, built only from events (it never reads another
-- service's tables). No foreign keys between these tables: events on different topics
-- arrive in any order, and a violation may land before its vehicle's registry record.
CREATE TABLE persons (
    person_id      uuid PRIMARY KEY,
    name           text NOT NULL,
    id_number      text NOT NULL,
    phone          text NOT NULL,
    alipay_user_id text UNIQUE
);

CREATE TABLE vehicles (
    vehicle_id      uuid PRIMARY KEY,
    plate_type      text NOT NULL,
    plate_number    text NOT NULL,
    vin             text NOT NULL,
    owner_person_id uuid NOT NULL,
    vehicle_kind    text NOT NULL DEFAULT ''
);
CREATE INDEX vehicles_owner_idx ON vehicles (owner_person_id);
CREATE INDEX vehicles_plate_idx ON vehicles (plate_type, plate_number);

CREATE TABLE licences (
    licence_id      uuid PRIMARY KEY,
    person_id       uuid NOT NULL,
    licence_no      text NOT NULL,
    file_no         text NOT NULL,
    licence_class   text NOT NULL,
    first_issued_on date NOT NULL,
    points          integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'valid'
);
CREATE INDEX licences_person_idx ON licences (person_id);
CREATE INDEX licences_no_idx ON licences (licence_no);

CREATE TABLE violations (
    violation_id   uuid PRIMARY KEY,
    vehicle_id     uuid NOT NULL,
    plate_type     text NOT NULL,
    plate_number   text NOT NULL,
    licence_id     uuid,
    violation_code text NOT NULL,
    description_zh text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    place          text NOT NULL,
    fine_fen       bigint NOT NULL,
    points         integer NOT NULL,
    source         text NOT NULL,
    procedure      text NOT NULL,
    status         text NOT NULL,
    decision_no    text,
    decision_date  date,
    disputed       boolean NOT NULL DEFAULT false
);
-- newest first per vehicle / licence, with the id as a tie-breaker for the cursor
CREATE INDEX violations_vehicle_page_idx ON violations (vehicle_id, occurred_at DESC, violation_id DESC);
CREATE INDEX violations_licence_page_idx ON violations (licence_id, occurred_at DESC, violation_id DESC)
    WHERE licence_id IS NOT NULL;

-- Active follows (from FollowStarted / FollowEnded).
CREATE TABLE follows (
    follow_id          uuid PRIMARY KEY,
    follower_person_id uuid,
    follower_user_id   text NOT NULL,
    vehicle_id         uuid,
    licence_id         uuid,
    active             boolean NOT NULL DEFAULT true
);
CREATE INDEX follows_follower_idx ON follows (follower_user_id) WHERE active;
