"""Use cases of the query service: access, cache, masking, composed into views."""
