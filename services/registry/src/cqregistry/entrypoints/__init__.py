"""Entry points: the RegistryService gRPC servicer."""
