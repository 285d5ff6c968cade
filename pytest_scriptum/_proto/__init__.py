"""Generated protobuf and gRPC code for dodil.scriptum.v1 (regenerate: python tools/gen_proto.py)."""
