"""cqgateway: the FastAPI edge (mini-program API, counter API, health) in front of the
gRPC services. Build the app with ``cqgateway.app.create_app``; run it with
``python -m cqgateway serve``."""
