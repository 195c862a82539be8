-- Retention of the event log (cqcommon.retention): the relay deletes published rows by
-- their publication time, each consumer its own group's inbox rows by their application
-- time. Without these indexes every pruning batch would scan the whole table.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX inbox_group_processed_at_idx ON inbox (consumer_group, processed_at);
