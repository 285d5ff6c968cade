"""Constants and the seed of the security tests: two scripts with different overlays whose handler
reports the env it sees, and a file barrier so concurrent runs provably overlap."""

from __future__ import annotations

from pathlib import Path

from helpers import auth, write_seed

TOKEN = "tok-security-7c2d91e4a05f"
ORG = "sec-org"
OTHER_TOKEN = "tok-security-other-51b8e3"
OTHER_ORG = "sec-other"
AUTH = auth(TOKEN, ORG)
OTHER_AUTH = auth(OTHER_TOKEN, OTHER_ORG)
REPORTED_KEYS = ("REGION", "API_KEY", "TEAM", "ALPHA_SECRET", "BETA_SECRET")
TENANT_ENV = {"REGION": "eu-sec", "API_KEY": "sk-sec-tenant-0000"}
OVERLAYS = {
    "alpha": {"TEAM": "alpha", "ALPHA_SECRET": "alpha-secret-1111"},
    "beta": {"TEAM": "beta", "BETA_SECRET": "beta-secret-2222"},
}

_HANDLER = f"""
import os
import time
from pathlib import Path


def handler(event, context):
    barrier = event.get("barrier")
    together = 0
    if barrier:
        # Arrive, then wait (bounded) until every party of the test has arrived.
        Path(barrier, event["me"]).touch()
        deadline = time.monotonic() + 30
        while len(os.listdir(barrier)) < event["parties"] and time.monotonic() < deadline:
            time.sleep(0.01)
        together = len(os.listdir(barrier))
    seen = {{key: os.environ[key] for key in {REPORTED_KEYS!r} if key in os.environ}}
    return {{"env": seen, "together": together, "x2": event.get("x", 0) * 2}}
"""


def write_alpha_beta_seed(root: Path) -> Path:
    """tenant env + alpha (overlay TEAM/ALPHA_SECRET) and beta (TEAM/BETA_SECRET), v1 each."""
    for name, overlay in OVERLAYS.items():
        write_seed(root, script=name, versions={1: _HANDLER}, overlay=overlay, tenant_env=TENANT_ENV)
    return root
