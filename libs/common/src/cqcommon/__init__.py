"""Shared plumbing for every cqtraffic service: settings, database and migrations,
transactional outbox and idempotent inbox, Kafka, Redis, telemetry, gRPC bootstrap,
domain error model, and pure helpers more than one service needs (money, clock).

Nothing here holds a business rule of one service, and nothing connects at import time.
"""
