"""The runner's adapters: PostgreSQL (run records, advisory locks), gRPC (the services'
RunJob), the terminal (progress), and in-memory fakes for tests."""
