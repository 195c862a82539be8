"""Vehicle-follow's domain: follow requests and consent, follows, quotas and SMS codes, as
pure code (no grpc, no psycopg, no redis)."""
