"""Adapters of the payment service (PostgreSQL, Redis, providers)."""
