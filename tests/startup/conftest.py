"""Startup (issues 11 and 18): what a session starts, contacts and imports, seen from inside the
inner pytest processes (an audit hook and ``sys.modules``, ``kit.probe``) or from a seeded server's
counters (``platform``: ``seeds.doubles``, calc v1 good, v2 bad and active), never by timing."""

from kit.fixtures.doubles import _shared_server, _token_env, platform, seed_dir  # noqa: F401
