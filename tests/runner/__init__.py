"""Pinned runs: whose fault a result is, thread states, early dispatch and its limits, retries,
deadlines, drift, the circuit breaker."""
