"""Payment service: payable decisions (from events), idempotent payments, refunds and
reconciliation. Publishes FinePaid and PaymentRefunded."""
