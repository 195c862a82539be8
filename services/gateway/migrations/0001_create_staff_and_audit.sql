-- Counter staff accounts and the audit trail of every /internal/v1 call (R-USR-2).
CREATE TABLE staff (
    staff_id      text PRIMARY KEY CHECK (staff_id ~ '^[a-z0-9_.-]{3,64}$'),
    role          text NOT NULL CHECK (role IN ('clerk', 'supervisor')),
    -- scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    -- NULL when the caller was not authenticated (missing or bad token).
    staff_id     text,
    role         text,
    method       text NOT NULL,
    path         text NOT NULL,
    query        text NOT NULL DEFAULT '',
    -- Identifiers of the people/vehicles/licences/records the call concerned, e.g.
    -- 'vehicle:<id>', 'plate:02:渝A12345', 'licence_no:<no>', 'violation:<id>'.
    subjects     text[] NOT NULL DEFAULT '{}',
    status_code  integer NOT NULL,
    trace_id     text
);

CREATE INDEX audit_log_subjects_idx ON audit_log USING gin (subjects);
CREATE INDEX audit_log_staff_time_idx ON audit_log (staff_id, occurred_at DESC);
