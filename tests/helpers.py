"""Shared helpers of the plugin's pytester tests: a seed builder and readers of inner-session output.

Inner pytest sessions start their own embedded server from a seed written here, so every test
directory is a self-contained smoke suite exactly as a user would lay it out.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = [
    "ENV_VARS",
    "EXAMPLE_SUITE",
    "SHOP",
    "SHOP_SECRETS",
    "copy_example_suite",
    "outcomes",
    "write_seed",
    "write_shop_seed",
    "write_smoke_ini",
]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SUITE = REPO / "example_suites" / "invoice_parser"

# Environment variables the plugin reads: an outer environment must not leak into inner sessions
# (tests/conftest.py deletes them before every test).
ENV_VARS = (
    "SCRIPTUM_VERSION",
    "SCRIPTUM_SCRIPT",
    "SCRIPTUM_ENDPOINT",
    "SCRIPTUM_HTTP_URL",
    "SCRIPTUM_ORG_ID",
    "SCRIPTUM_INCIDENT",
    "DODIL_TOKEN",
)

# "PASSED path::test", "FAILED path::test - message", "ERROR path::test - message" (from -rA).
_SUMMARY_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")


def write_seed(
    root: Path,
    *,
    script: str,
    versions: Mapping[int, str],
    active: int | None = None,
    overlay: Mapping[str, str] | None = None,
    tenant_env: Mapping[str, str] | None = None,
    output_schemas: Mapping[int, Mapping[str, Any]] | None = None,
) -> Path:
    """Write a seed directory (DESIGN.md section 5) for one script and return ``root``.

    ``versions`` maps N to the source of ``vN/handler.py``; ``output_schemas`` maps N to the
    output JSON Schema written to ``vN/info.yaml`` (versions without one declare none).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = dict(tenant_env or {})
    (root / "tenant.env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    base = root / "scripts" / script
    base.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {}
    if active is not None:
        meta["active"] = active
    if overlay:
        meta["env"] = dict(overlay)
    if meta:
        (base / "script.yaml").write_text(yaml.safe_dump(meta))
    for number, source in versions.items():
        vdir = base / f"v{number}"
        vdir.mkdir(exist_ok=True)
        (vdir / "handler.py").write_text(textwrap.dedent(source))
        schema = (output_schemas or {}).get(number)
        if schema is not None:
            (vdir / "info.yaml").write_text(yaml.safe_dump({"output": json.loads(json.dumps(schema))}))
    return root


def write_smoke_ini(pytester: pytest.Pytester, *, script: str, seed: str = "seed", **extra: str) -> None:
    """A pytest.ini that runs the directory's smoke tests against an embedded server."""
    lines = [
        "[pytest]",
        "scriptum_endpoint = embedded",
        f"scriptum_seed = {seed}",
        f"scriptum_script = {script}",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    (pytester.path / "pytest.ini").write_text("\n".join(lines) + "\n")


def copy_example_suite(pytester: pytest.Pytester) -> Path:
    """Copy the invoice-parser example suite (without old evidence) into the pytester directory."""
    shutil.copytree(
        EXAMPLE_SUITE,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("evidence", "__pycache__", ".pytest_cache"),
    )
    return pytester.path


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Per-test outcomes of an inner session run with ``-rA``: ``{nodeid: "passed" | "failed" | ...}``.

    A test whose setup errors (ERROR) keeps that outcome even though its teardown passed.
    """
    found: dict[str, str] = {}
    for line in result.outlines:
        match = _SUMMARY_LINE.match(line)
        if match is not None:
            outcome, nodeid = match.group(1).lower(), match.group(2)
            if found.get(nodeid) not in ("error", "failed"):
                found[nodeid] = outcome
    return found


# -- the "shop" script: a small seed whose outputs exercise every matcher ------------------------

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

SHOP_DECLARED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version"],
    "properties": {"version": {"type": "integer"}, "total": {"type": "number"}, "id": {"type": "string"}},
}


def write_shop_seed(root: Path) -> Path:
    """The shop seed: v1..v3 published, v2 active, only v3 declares an output schema."""
    return write_seed(
        root,
        script=SHOP,
        versions={n: _SHOP_HANDLER.format(version=n) for n in (1, 2, 3)},
        active=2,
        overlay=SHOP_OVERLAY,
        tenant_env=SHOP_TENANT_ENV,
        output_schemas={3: SHOP_DECLARED_SCHEMA},
    )
