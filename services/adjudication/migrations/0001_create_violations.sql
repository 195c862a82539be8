-- Adjudication's own copy of the registry data it needs (from registry events).
CREATE TABLE vehicles (
    vehicle_id      uuid PRIMARY KEY,
    plate_type      text NOT NULL,
    plate_number    text NOT NULL,
    vin             text NOT NULL,
    owner_person_id uuid NOT NULL,
    UNIQUE (plate_type, plate_number)
);

CREATE TABLE licences (
    licence_id      uuid PRIMARY KEY,
    person_id       uuid NOT NULL,
    licence_no      text NOT NULL UNIQUE,
    file_no         text NOT NULL,
    licence_class   text NOT NULL,
    first_issued_on date NOT NULL,
    status          text NOT NULL
);

CREATE TABLE violation_codes (
    code           text PRIMARY KEY,
    description_zh text NOT NULL,
    points         integer NOT NULL CHECK (points BETWEEN 0 AND 9),
    fine_min_fen   bigint NOT NULL,
    fine_max_fen   bigint NOT NULL
);

-- Violations as legal records.
CREATE TABLE violations (
    violation_id     uuid PRIMARY KEY,
    source_system    text        NOT NULL,
    source_record_id text        NOT NULL,
    request_hash     text        NOT NULL,
    vehicle_id       uuid        NOT NULL REFERENCES vehicles (vehicle_id),
    licence_id       uuid        REFERENCES licences (licence_id),
    violation_code   text        NOT NULL,
    description_zh   text        NOT NULL,
    occurred_at      timestamptz NOT NULL,
    place            text        NOT NULL,
    fine_fen         bigint      NOT NULL CHECK (fine_fen > 0),
    points           integer     NOT NULL CHECK (points BETWEEN 0 AND 9),
    source           text        NOT NULL CHECK (source IN ('non_site', 'on_site')),
    procedure        text        NOT NULL CHECK (procedure IN ('simple', 'general')),
    status           text        NOT NULL CHECK (status IN ('unhandled', 'handled_unpaid', 'paid')),
    decision_no      text        UNIQUE,
    decision_date    date,
    disputed         boolean     NOT NULL DEFAULT false,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    -- R-ERR-1 / idempotency: one legal record per enforcement-system record
    UNIQUE (source_system, source_record_id)
);
CREATE INDEX violations_vehicle_idx ON violations (vehicle_id);
CREATE INDEX violations_licence_idx ON violations (licence_id) WHERE licence_id IS NOT NULL;
