"""Payment's domain: payable decisions, payments and their states, idempotency keys,
refunds, provider notifications and receipts, as pure code (no grpc, no psycopg)."""
