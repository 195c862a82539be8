-- Wake the relay as soon as an event is committed: every statement that inserts outbox
-- rows notifies this schema's channel (cqcommon.outbox.notify_channel), whatever code
-- path wrote them. A trigger rather than pg_notify in append_to_outbox: it also covers
-- rows written by SQL outside that function (a bulk loader, an operator's replay), and
-- one notification per statement (PostgreSQL folds equal notifications of one
-- transaction into one, delivered at commit) keeps a burst cheap. A relay that misses a
-- notification still finds the rows by polling.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- channel names are identifiers: at most 63 bytes (a shared prefix only wakes a
    -- second relay for nothing)
    PERFORM pg_notify(left('outbox_' || TG_TABLE_SCHEMA, 63), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
