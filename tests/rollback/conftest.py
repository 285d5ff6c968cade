"""The fault matrix's platform (``kit.fixtures.doubles``) for this package's whole-session tests."""

from kit.fixtures.doubles import _shared_server, _token_env, platform, seed_dir  # noqa: F401
