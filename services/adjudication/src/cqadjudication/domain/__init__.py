"""Pure adjudication rules and entities (no grpc, psycopg, kafka or redis imports)."""
