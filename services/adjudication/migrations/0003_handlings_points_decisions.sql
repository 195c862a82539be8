-- Self-service handling (R-ADJ-1..9, R-X-2): the persons copy face verification needs,
-- each licence's points ledger with its append-only entries, handlings and their face
-- verifications, the decision-number serial and the R-X-2 alerts.
-- Every constraint is named: cqadjudication.adapters.constraints maps each name to the
-- answer a request that hits it gets (or says why no request reaches it).

-- Persons as the registry knows them (PersonRegistered): a face verification checks a
-- named person (name + ID number), so adjudication keeps its own copy.
CREATE TABLE persons (
    person_id uuid NOT NULL,
    name      text NOT NULL,
    id_number text NOT NULL,
    CONSTRAINT persons_pkey PRIMARY KEY (person_id)
);

-- One row per licence: the points of its current scoring cycle. Initialised from the
-- registry's DriverRegistered.points on first sight; every change appends an entry, so
-- points == sum(entries.delta) always holds. external_change_at: the last change by
-- another channel (counter, other province, a registry re-import with other points),
-- read by the R-ADJ-6 sync guard.
CREATE TABLE points_ledger (
    licence_id         uuid        NOT NULL,
    points             integer     NOT NULL,
    cycle_start        date        NOT NULL,
    cycle_end          date        NOT NULL,
    external_change_at timestamptz,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT points_ledger_pkey PRIMARY KEY (licence_id),
    CONSTRAINT points_ledger_licence_fk FOREIGN KEY (licence_id) REFERENCES licences (licence_id),
    CONSTRAINT points_ledger_points_nonnegative CHECK (points >= 0),
    CONSTRAINT points_ledger_cycle_order CHECK (cycle_start <= cycle_end)
);

CREATE TABLE points_entries (
    entry_id     bigint GENERATED ALWAYS AS IDENTITY,
    licence_id   uuid        NOT NULL,
    delta        integer     NOT NULL,
    points_after integer     NOT NULL,
    channel      text        NOT NULL,
    violation_id uuid,
    cycle_start  date        NOT NULL,
    at           timestamptz NOT NULL,
    CONSTRAINT points_entries_pkey PRIMARY KEY (entry_id),
    CONSTRAINT points_entries_licence_fk FOREIGN KEY (licence_id)
        REFERENCES points_ledger (licence_id),
    CONSTRAINT points_entries_violation_fk FOREIGN KEY (violation_id)
        REFERENCES violations (violation_id),
    CONSTRAINT points_entries_channel_known
        CHECK (channel IN ('online', 'counter', 'other_province', 'registry')),
    CONSTRAINT points_entries_points_after_nonnegative CHECK (points_after >= 0)
);
-- A violation's points are added once (R-ADJ-5), whatever the channel.
CREATE UNIQUE INDEX points_entries_violation_unique ON points_entries (violation_id)
    WHERE violation_id IS NOT NULL;
CREATE INDEX points_entries_licence_idx ON points_entries (licence_id, cycle_start);

-- Handlings: a person's attempt to handle one violation (online), or a counter's.
CREATE TABLE handlings (
    handling_id        uuid        NOT NULL,
    violation_id       uuid        NOT NULL,
    handler_person_id  uuid        NOT NULL,
    handler_licence_id uuid        NOT NULL,
    route              text        NOT NULL,
    -- the handler's relation to the vehicle when the handling started (R-ADJ-3/4)
    relation           text        NOT NULL,
    state              text        NOT NULL,
    staff_id           text,
    decision_no        text,
    created_at         timestamptz NOT NULL,
    submitted_at       timestamptz,
    CONSTRAINT handlings_pkey PRIMARY KEY (handling_id),
    CONSTRAINT handlings_violation_fk FOREIGN KEY (violation_id)
        REFERENCES violations (violation_id),
    CONSTRAINT handlings_licence_fk FOREIGN KEY (handler_licence_id)
        REFERENCES licences (licence_id),
    CONSTRAINT handlings_route_known CHECK (route IN ('handler', 'owner_then_handler', 'counter')),
    CONSTRAINT handlings_relation_known
        CHECK (relation IN ('owner', 'follower', 'proven', 'none')),
    CONSTRAINT handlings_state_known
        CHECK (state IN ('awaiting_verification', 'verified', 'submitted', 'failed')),
    -- a submitted handling carries its decision, and only a submitted one
    CONSTRAINT handlings_submitted_decision CHECK (
        (state = 'submitted') = (decision_no IS NOT NULL)
        AND (state = 'submitted') = (submitted_at IS NOT NULL)
    )
);
-- R-ADJ-5: one violation is handled at most once, decided by the database.
CREATE UNIQUE INDEX handlings_one_submitted_per_violation ON handlings (violation_id)
    WHERE state = 'submitted';
CREATE INDEX handlings_violation_idx ON handlings (violation_id);

-- Face verifications (R-ADJ-8): one row per started verification, bound to one handling
-- and one person; usable once (used_at), before expires_at.
CREATE TABLE verifications (
    verification_id uuid        NOT NULL,
    handling_id     uuid        NOT NULL,
    step            text        NOT NULL,
    person_id       uuid        NOT NULL,
    adapter         text        NOT NULL,
    certify_id      text        NOT NULL,
    url             text        NOT NULL,
    status          text        NOT NULL,
    started_at      timestamptz NOT NULL,
    passed_at       timestamptz,
    expires_at      timestamptz,
    used_at         timestamptz,
    CONSTRAINT verifications_pkey PRIMARY KEY (verification_id),
    CONSTRAINT verifications_handling_fk FOREIGN KEY (handling_id)
        REFERENCES handlings (handling_id),
    CONSTRAINT verifications_step_known CHECK (step IN ('owner', 'handler')),
    CONSTRAINT verifications_status_known CHECK (status IN ('pending', 'passed', 'failed')),
    CONSTRAINT verifications_passed_times CHECK (
        (status = 'passed') = (passed_at IS NOT NULL)
        AND (passed_at IS NULL) = (expires_at IS NULL)
    ),
    CONSTRAINT verifications_used_passed CHECK (used_at IS NULL OR status = 'passed'),
    -- one step of each kind per handling
    CONSTRAINT verifications_step_unique UNIQUE (handling_id, step),
    -- a provider's certify id belongs to exactly one verification (no reuse elsewhere)
    CONSTRAINT verifications_certify_unique UNIQUE (adapter, certify_id)
);

-- R-ADJ-7: decision numbers are the authority code + a 10-digit serial from here
-- (collision-free across processes and restarts).
CREATE SEQUENCE decision_serial AS bigint MINVALUE 1 MAXVALUE 9999999999 NO CYCLE;

-- R-X-2: staff see the online attempts refused by the points-buying guard.
CREATE TABLE points_buying_alerts (
    alert_id          uuid        NOT NULL,
    kind              text        NOT NULL,
    licence_id        uuid        NOT NULL,
    vehicle_id        uuid        NOT NULL,
    cycle_start       date        NOT NULL,
    count             integer     NOT NULL,
    violation_id      uuid        NOT NULL,
    handler_person_id uuid        NOT NULL,
    raised_at         timestamptz NOT NULL,
    CONSTRAINT points_buying_alerts_pkey PRIMARY KEY (alert_id),
    CONSTRAINT points_buying_alerts_kind_known
        CHECK (kind IN ('licence_for_many_vehicles', 'vehicle_to_many_licences')),
    -- repeated attempts at the same case are one alert
    CONSTRAINT points_buying_alerts_case_unique
        UNIQUE (kind, licence_id, vehicle_id, violation_id, cycle_start)
);
CREATE INDEX points_buying_alerts_raised_idx ON points_buying_alerts (raised_at DESC, alert_id DESC);
