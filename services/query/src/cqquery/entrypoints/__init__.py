"""Entry points: the gRPC servicer and the read-model consumer."""
