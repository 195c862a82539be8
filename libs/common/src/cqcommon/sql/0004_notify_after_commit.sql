-- Relays are woken after the commit instead (cqcommon.outbox_notify): a NOTIFY sent
-- inside the writing transaction holds PostgreSQL's notification lock through that
-- commit's disk flush, so every event-writing commit of the database waited for the one
-- before. Rows written outside a unit of work are found by the relay's poll.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
