"""The one kit of the test suite: every helper the tests share lives here.

- ``constants``: the one set of tokens, organizations, auth metadata and paths;
- ``platform``: ``Platform``, a running dev server driven and read over its real gRPC port;
- ``seeds``: the one seed writer (``write_seed``) and the seeds built with it (``seeds.shop``,
  ``seeds.sums``, ``seeds.doubles``, ``seeds.alpha_beta``, ``seeds.svc``), plus the static seed dirs;
- ``sessions``: reading inner pytest sessions (``outcomes``), smoke ini files, the example suite;
- ``evidence``: readers of bundles, JUnit files and Allure results;
- ``transports``: any RPC by name over gRPC or the HTTP gateway (the devserver tests' tables);
- ``routes``: the proto's HTTP routes, read from its annotations;
- ``scripted``: scripted gRPC and HTTP servers for what the dev server never does;
- ``wire``: servers whose field numbers differ from the bundled proto;
- ``fake_platform``: a fake client for the pure logic of preflight and rollback;
- ``shared``: ``once_per_run``, an expensive read-only input built once and shared by the xdist workers;
- ``fixtures``: fixture families several test packages share (imported into their conftest).

The names most tests need are importable from ``kit`` itself.
"""

from kit.constants import (
    AUTH,
    ENV_VARS,
    EXAMPLE_SUITE,
    HEADERS,
    MIB,
    ORG,
    OTHER_AUTH,
    OTHER_ORG,
    OTHER_TOKEN,
    TOKEN,
    auth,
)
from kit.platform import Platform
from kit.seeds import write_seed
from kit.sessions import copy_example_suite, outcomes, write_smoke_ini

__all__ = [
    "AUTH",
    "ENV_VARS",
    "EXAMPLE_SUITE",
    "HEADERS",
    "MIB",
    "ORG",
    "OTHER_AUTH",
    "OTHER_ORG",
    "OTHER_TOKEN",
    "TOKEN",
    "Platform",
    "auth",
    "copy_example_suite",
    "outcomes",
    "write_seed",
    "write_smoke_ini",
]
