"""How the runner is reached: its command line and its gRPC server (JobsService)."""
