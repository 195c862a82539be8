"""Entry points: the gRPC servicer (and later the event consumers)."""
