"""The one set of constants of the test suite: tokens, organizations, auth metadata, paths.

Every dev server a test starts knows ``TOKEN`` in organization ``ORG`` (its seed goes there) and,
where a second caller is needed, ``OTHER_TOKEN`` in ``OTHER_ORG``. Tokens are long and unusual
enough that finding one in any output is a leak, never a coincidence.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AUTH",
    "CHANNEL_OPTIONS",
    "ENV_VARS",
    "EXAMPLE_SUITE",
    "HEADERS",
    "MIB",
    "ORG",
    "OTHER_AUTH",
    "OTHER_ORG",
    "OTHER_TOKEN",
    "PROTO",
    "REPO",
    "TESTS",
    "TOKEN",
    "TRANSPORTS",
    "auth",
]

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
EXAMPLE_SUITE = REPO / "example_suites" / "invoice_parser"
PROTO = REPO / "protos" / "dodil" / "scriptum" / "v1" / "scriptum.proto"

TOKEN = "tok-acme-5c1f0b2e93d7a4"
ORG = "acme"
OTHER_TOKEN = "tok-globex-9e7d4a61b3f2c8"
OTHER_ORG = "globex"


def auth(token: str, org: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that authenticates as ``token`` in organization ``org``."""
    return (("authorization", f"Bearer {token}"), ("x-organization-id", org))


AUTH = auth(TOKEN, ORG)
OTHER_AUTH = auth(OTHER_TOKEN, OTHER_ORG)
HEADERS = {"Authorization": f"Bearer {TOKEN}", "x-organization-id": ORG}

TRANSPORTS = ["grpc", "http"]
MIB = 1024 * 1024
# Clients of the dev server raise their receive limit: a GetThreadResult answer holds up to 4 MiB
# of output plus its envelope, a StreamThreadResult chunk up to 16 MiB.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * MIB)]

# Environment variables the plugin reads: an outer environment must not leak into inner sessions
# (tests/conftest.py deletes them before every test).
ENV_VARS = (
    "SCRIPTUM_VERSION",
    "SCRIPTUM_SCRIPT",
    "SCRIPTUM_ENDPOINT",
    "SCRIPTUM_API_ENDPOINT",
    "SCRIPTUM_HTTP_URL",
    "SCRIPTUM_ORG_ID",
    "SCRIPTUM_ORG_NAME",
    "SCRIPTUM_INCIDENT",
    "SCRIPTUM_SHARD",
    "DODIL_TOKEN",
    "SCRIPTUM_TOKEN",
)
