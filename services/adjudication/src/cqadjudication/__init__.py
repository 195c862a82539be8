"""Adjudication service: violations as legal records, handlings, decisions and each
driver's points ledger. Publishes ViolationRecorded, ViolationHandled, ViolationDisputed,
PointsChanged through its outbox."""
