-- Vehicle and licence follows (R-FOL-1..8, R-X-3): the registry copy the follow service
-- matches requests against, follow requests (consent in the app or by SMS code), follows,
-- and one lock row per follower so that a user's activations queue (R-FOL-6). Every
-- constraint is named: cqfollow.adapters.constraints maps each name to the answer a request
-- that hits it gets (or says why no request reaches it).

-- Registry copy (registry events, consumer group "follow.registry"). A person with an
-- Alipay user id is "on the platform" (R-FOL-2): they approve requests in the app; anyone
-- else is asked by SMS at the phone on record.
CREATE TABLE persons (
    person_id      uuid        NOT NULL,
    name           text        NOT NULL,
    phone          text,
    alipay_user_id text,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT persons_pkey PRIMARY KEY (person_id)
);
CREATE INDEX persons_alipay_user_idx ON persons (alipay_user_id) WHERE alipay_user_id IS NOT NULL;

-- Vehicles with their VIN (R-FOL-1: the requester proves it); not unique by plate: the
-- lookup compares the VIN of every vehicle holding the plate.
CREATE TABLE vehicles (
    vehicle_id      uuid        NOT NULL,
    plate_type      text        NOT NULL,
    plate_number    text        NOT NULL,
    vin             text        NOT NULL,
    owner_person_id uuid        NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT vehicles_pkey PRIMARY KEY (vehicle_id)
);
CREATE INDEX vehicles_plate_idx ON vehicles (plate_number, plate_type);
CREATE INDEX vehicles_owner_idx ON vehicles (owner_person_id);

-- Driving licences (R-FOL-8: name + licence number + file number must match).
CREATE TABLE licences (
    licence_id uuid        NOT NULL,
    person_id  uuid        NOT NULL,
    licence_no text        NOT NULL,
    file_no    text        NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT licences_pkey PRIMARY KEY (licence_id)
);
CREATE INDEX licences_licence_no_idx ON licences (licence_no);

-- One row per follower (a user "user:<alipay id>", or a roster person "person:<uuid>"),
-- locked by every activation of theirs: two activations of one follower never count their
-- quotas at the same time (R-FOL-6).
CREATE TABLE follower_quotas (
    follower_key text        NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT follower_quotas_pkey PRIMARY KEY (follower_key)
);

-- Follows. A follow is active while ended_at is NULL and it has not passed expires_at (an
-- SMS-authorised follow lapses after SMS_FOLLOW_TTL_DAYS, R-FOL-5; the nightly job ends it).
-- started_at also spends a chance of that calendar year (Asia/Shanghai, R-FOL-3).
CREATE TABLE follows (
    follow_id          uuid        NOT NULL,
    follower_key       text        NOT NULL,
    follower_user_id   text,
    follower_person_id uuid,
    target             text        NOT NULL,
    vehicle_id         uuid,
    licence_id         uuid,
    consent            text        NOT NULL,
    request_id         uuid,
    started_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    ended_at           timestamptz,
    end_reason         text,
    CONSTRAINT follows_pkey PRIMARY KEY (follow_id),
    CONSTRAINT follows_follower_known
        CHECK (follower_user_id IS NOT NULL OR follower_person_id IS NOT NULL),
    CONSTRAINT follows_target_known CHECK (target IN ('vehicle', 'licence')),
    CONSTRAINT follows_target_subject CHECK (
        (target = 'vehicle' AND vehicle_id IS NOT NULL AND licence_id IS NULL)
        OR (target = 'licence' AND licence_id IS NOT NULL AND vehicle_id IS NULL)
    ),
    CONSTRAINT follows_consent_known CHECK (consent IN ('owner_app', 'sms', 'none')),
    -- licence follows need no consent (R-FOL-8); vehicle follows always have one (R-FOL-2)
    CONSTRAINT follows_consent_fits_target CHECK ((target = 'licence') = (consent = 'none')),
    -- R-FOL-5: exactly the SMS-authorised follows expire
    CONSTRAINT follows_sms_expires CHECK ((consent = 'sms') = (expires_at IS NOT NULL)),
    CONSTRAINT follows_end_reason_known
        CHECK (end_reason IS NULL OR end_reason IN ('unfollowed', 'revoked', 'expired')),
    CONSTRAINT follows_ended_with_reason CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- One running follow per (follower, vehicle) and per (follower, licence), whatever the code.
CREATE UNIQUE INDEX follows_one_per_follower_vehicle ON follows (follower_key, vehicle_id)
    WHERE ended_at IS NULL AND target = 'vehicle';
CREATE UNIQUE INDEX follows_one_per_follower_licence ON follows (follower_key, licence_id)
    WHERE ended_at IS NULL AND target = 'licence';
CREATE INDEX follows_follower_idx ON follows (follower_key, started_at);
CREATE INDEX follows_vehicle_running_idx ON follows (vehicle_id) WHERE ended_at IS NULL;
CREATE INDEX follows_user_idx ON follows (follower_user_id) WHERE ended_at IS NULL;
-- R-FOL-5 / R-JOB-4: the expiry job pages by (expires_at, follow_id).
CREATE INDEX follows_expiry_idx ON follows (expires_at, follow_id)
    WHERE ended_at IS NULL AND expires_at IS NOT NULL;

-- Follow requests (R-FOL-2). owner_person_id is the vehicle's owner when asked; a request
-- nobody acts on expires after FOLLOW_REQUEST_TTL_H. sms_phone_masked and sms_resend_at
-- are set while an SMS code is out (the phone itself is never stored here).
CREATE TABLE follow_requests (
    request_id          uuid        NOT NULL,
    requester_user_id   text        NOT NULL,
    requester_person_id uuid,
    vehicle_id          uuid        NOT NULL,
    owner_person_id     uuid        NOT NULL,
    consent             text        NOT NULL,
    state               text        NOT NULL,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    decided_at          timestamptz,
    follow_id           uuid,
    sms_phone_masked    text,
    sms_resend_at       timestamptz,
    CONSTRAINT follow_requests_pkey PRIMARY KEY (request_id),
    CONSTRAINT follow_requests_follow_fk FOREIGN KEY (follow_id) REFERENCES follows (follow_id),
    CONSTRAINT follow_requests_consent_known CHECK (consent IN ('owner_app', 'sms')),
    CONSTRAINT follow_requests_state_known CHECK (state IN (
        'pending_owner_approval', 'pending_sms_code', 'approved', 'declined', 'expired',
        'cancelled'
    )),
    CONSTRAINT follow_requests_pending_fits_consent CHECK (
        (state <> 'pending_owner_approval' OR consent = 'owner_app')
        AND (state <> 'pending_sms_code' OR consent = 'sms')
    ),
    CONSTRAINT follow_requests_approved_has_follow
        CHECK ((state = 'approved') = (follow_id IS NOT NULL)),
    CONSTRAINT follow_requests_decided_when_done CHECK (
        state IN ('pending_owner_approval', 'pending_sms_code') OR decided_at IS NOT NULL
    )
);
-- At most one waiting request per (requester, vehicle).
CREATE UNIQUE INDEX follow_requests_one_pending ON follow_requests (requester_user_id, vehicle_id)
    WHERE state IN ('pending_owner_approval', 'pending_sms_code');
CREATE INDEX follow_requests_owner_idx ON follow_requests (owner_person_id, created_at)
    WHERE state = 'pending_owner_approval';
CREATE INDEX follow_requests_requester_idx ON follow_requests (requester_user_id, created_at);
-- the request-expiry job pages by (expires_at, request_id)
CREATE INDEX follow_requests_expiry_idx ON follow_requests (expires_at, request_id)
    WHERE state IN ('pending_owner_approval', 'pending_sms_code');
