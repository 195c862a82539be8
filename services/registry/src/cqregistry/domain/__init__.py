"""The registry's pure domain: record types, the violation-code catalogue and the import
rules (natural keys, id assignment, validation). No grpc, psycopg or protobuf imports."""
