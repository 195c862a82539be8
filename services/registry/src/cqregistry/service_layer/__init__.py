"""Use cases of the registry import."""
