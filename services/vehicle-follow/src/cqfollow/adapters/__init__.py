"""Adapters of the follow service (PostgreSQL, Redis, providers)."""
