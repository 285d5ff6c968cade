"""Constants of the devserver tests (a module of its own: importing them from conftest depends on
the order in which pytest loads conftest files)."""

from __future__ import annotations

from pathlib import Path

from helpers import auth

SEED = Path(__file__).parent / "seed"
TOKEN = "test-token-acme-0123456789"
ORG = "acme"
OTHER_TOKEN = "test-token-globex-9876543210"
OTHER_ORG = "globex"
AUTH = auth(TOKEN, ORG)
OTHER_AUTH = auth(OTHER_TOKEN, OTHER_ORG)
HEADERS = {"Authorization": f"Bearer {TOKEN}", "x-organization-id": ORG}
