"""Adapters: the registry's PostgreSQL repository and unit of work (all its SQL)."""
