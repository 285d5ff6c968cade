"""What the server refuses or hides: another organization's objects and admin, another run's env,
oversized input (a two-organization server per module)."""
