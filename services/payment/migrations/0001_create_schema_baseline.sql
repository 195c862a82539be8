-- Baseline of the payment schema. Payable decisions, payments, idempotency keys and
-- refunds are added by the payment issue's migrations (0002+); the outbox and inbox
-- tables come from the shared plumbing track.
COMMENT ON SCHEMA payment IS 'cqtraffic payment service: decisions, payments, refunds';
