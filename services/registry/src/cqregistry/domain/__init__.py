"""The registry's pure domain: record types, the violation-code catalogue, the import
rules (natural keys, id assignment, validation), its events and the SANDBOX.md roster. No
grpc, psycopg or protobuf imports."""
