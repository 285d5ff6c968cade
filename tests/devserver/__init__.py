"""The embedded server: every RPC over gRPC and the gateway, the runtime, auth, faults, fuzzing."""
