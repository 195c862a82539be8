"""Entry points: the gRPC servicer, its mappers and the registry-event consumer."""
