"""Adapters: PostgreSQL repositories (and later face-verification providers)."""
