"""Fixtures of the guard tests: a seeded two-organization server per module (``kit.fixtures.alpha_beta``),
which replaces the devserver package's per-test server here."""

from kit.fixtures.alpha_beta import _token_env, channel, other, platform, server, stub  # noqa: F401
