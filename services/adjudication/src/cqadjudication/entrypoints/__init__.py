"""Entry points: the gRPC servicer, proto mappers and event consumers."""
