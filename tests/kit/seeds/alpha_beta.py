"""Two scripts, alpha and beta, with different overlays over one tenant env, whose handler reports
the env it sees (and its worker's pid); a file barrier makes concurrent runs provably overlap.
"""

from __future__ import annotations

from pathlib import Path

from kit.seeds import write_seed

__all__ = ["HANDLER", "OVERLAYS", "REPORTED_KEYS", "TENANT_ENV", "write_alpha_beta_seed"]

# The seed's handler (alpha and beta v1) reports these keys of its environment, its worker's pid,
# and leaves values behind in its worker's environment when the event says "leave".
REPORTED_KEYS = ("REGION", "API_KEY", "TEAM", "ALPHA_SECRET", "BETA_SECRET")
TENANT_ENV = {"REGION": "eu-sec", "API_KEY": "sk-sec-tenant-0000"}
OVERLAYS = {
    "alpha": {"TEAM": "alpha", "ALPHA_SECRET": "alpha-secret-1111"},
    "beta": {"TEAM": "beta", "BETA_SECRET": "beta-secret-2222"},
}
HANDLER = f"""
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
    if event.get("leave"):
        # Tamper with the worker: leave values in its environment for whoever runs next.
        os.environ["TEAM"] = "left-behind"
        os.environ["ALPHA_SECRET"] = "left-behind-secret"
    return {{"env": seen, "together": together, "x2": event.get("x", 0) * 2, "pid": os.getpid()}}
"""


def write_alpha_beta_seed(root: Path) -> Path:
    """tenant env + alpha (overlay TEAM/ALPHA_SECRET) and beta (TEAM/BETA_SECRET), v1 each."""
    for name, overlay in OVERLAYS.items():
        write_seed(root, script=name, versions={1: HANDLER}, overlay=overlay, tenant_env=TENANT_ENV)
    return root
