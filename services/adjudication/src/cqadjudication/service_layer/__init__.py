"""Use cases, one function per command."""
