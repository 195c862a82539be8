"""Adapters: the PostgreSQL read model."""
