"""Generated protobuf and gRPC stubs for the cqtraffic contracts (see proto/). Do not edit."""
