"""The "shop" script: a small seed whose outputs exercise every matcher."""

from __future__ import annotations

from pathlib import Path

from kit.seeds import write_seed

__all__ = ["SHOP", "SHOP_CONTRACT", "SHOP_SECRETS", "write_shop_seed"]

SHOP = "shop"
SHOP_TENANT_ENV = {"DB_HOST": "db.shop-secret.invalid", "API_KEY": "sk-shop-secret-0123"}
SHOP_OVERLAY = {"MODEL": "model-secret-x", "REGION": "eu-secret-1"}
SHOP_SECRETS = (*SHOP_TENANT_ENV.values(), *SHOP_OVERLAY.values())

# v2 (active) and v3 (the candidate, published but never activated) run the same code; each
# reports its own VERSION, so an output proves which version's code ran.
_SHOP_HANDLER = """\
import os

VERSION = {version}


def handler(event, context):
    kind = event.get("kind", "full") if isinstance(event, dict) else "full"
    with context.step("load"):
        if kind == "boom":
            raise ValueError("boom: the input asked this handler to fail")
    with context.step("build"):
        if kind == "small":
            return {{"version": VERSION, "n": 1}}
        if kind == "bad-shape":
            return {{"version": VERSION, "total": "ten"}}
        return {{
            "version": VERSION,
            "id": "INV-0042",
            "total": 10.004,
            "ratio": 0.3333,
            "customer": {{"name": "Ada", "address": {{"city": "Paris", "zip": "75001"}}}},
            "lines": [{{"sku": "A-1", "qty": 1}}, {{"sku": "B-2", "qty": 2}}],
            "seen_env": sorted(context.env),
            "db_host_in_environ": "DB_HOST" in os.environ,
        }}
"""

# v3's declarations: every output key the handler may return (only `version` is required; a
# default makes a field optional), so its outputs satisfy the contract except "bad-shape"'s total.
SHOP_CONTRACT = """\
script "shop"
  The shop fixture script of the plugin's tests.
version "3.0.0"

output
  version : integer
  n : integer = 0
  id : text = ""
  total : number = 0
  ratio : number = 0
  customer : object = null
  lines : list<object> = null
  seen_env : list<text> = null
  db_host_in_environ : boolean = null
"""


def write_shop_seed(root: Path) -> Path:
    """The shop seed: v1..v3 published, v2 active, only v3 declares a contract (its output)."""
    return write_seed(
        root,
        script=SHOP,
        versions={n: _SHOP_HANDLER.format(version=n) for n in (1, 2, 3)},
        active=2,
        overlay=SHOP_OVERLAY,
        tenant_env=SHOP_TENANT_ENV,
        contracts={3: SHOP_CONTRACT},
    )
