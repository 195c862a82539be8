-- Police master data as imported: one row per record, with a hash of its content so a
-- re-import of an unchanged record publishes nothing.
CREATE TABLE master_records (
    kind         text        NOT NULL CHECK (kind IN ('person', 'vehicle', 'driver', 'violation_code')),
    record_id    text        NOT NULL,
    content_hash text        NOT NULL,
    payload      bytea       NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, record_id)
);
