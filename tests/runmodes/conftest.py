"""Run modes and partial sessions (issue 11): a seeded server per module (``seeds.doubles``: calc v1
good, v2 bad and active, v3 good) read from the outer test."""

from kit.fixtures.doubles import _shared_server, _token_env, platform, seed_dir  # noqa: F401
