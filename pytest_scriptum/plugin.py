"""pytest hooks of pytest-scriptum (wiring only)."""
