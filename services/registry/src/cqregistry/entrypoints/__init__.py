"""Entry points: the RegistryService gRPC servicer, the proto <-> domain mappers, and the
command line (`python -m cqregistry ...`, including the sandbox loader)."""
