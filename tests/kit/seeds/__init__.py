"""The one seed writer (``write_seed``, DESIGN section 5 "Seed directory") and the seeds of the suite.

Each module of this package is one seed built with ``write_seed``, with the constants its tests
read: ``shop`` (every matcher), ``sums`` (the evidence suite's calc), ``doubles`` (the fault
matrix's calc), ``alpha_beta`` (two scripts whose handlers report their env), ``svc`` (concurrency),
``calc_regression`` (the rollback and promotion calc), ``assist`` (the paired baseline) and
``flaky`` (repeats).
``DEVSERVER_SEED`` and ``CLIENT_SEED`` are seed directories kept as files.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kit.constants import TESTS

__all__ = ["CLIENT_SEED", "DEVSERVER_SEED", "write_seed"]

DEVSERVER_SEED = TESTS / "devserver" / "seed"
CLIENT_SEED = TESTS / "client" / "seed"


def write_seed(
    root: Path,
    *,
    script: str,
    versions: Mapping[int, str],
    active: int | None = None,
    overlay: Mapping[str, str] | None = None,
    tenant_env: Mapping[str, str] | None = None,
    contracts: Mapping[int, str] | None = None,
    draft: str | None = None,
) -> Path:
    """Write a seed directory (DESIGN.md section 5) for one script and return ``root``.

    ``versions`` maps N to the source of ``vN/handler.py``; ``contracts`` maps N to the text of
    ``vN/contract.scriptum`` (the version's declarations; versions without one declare nothing);
    ``draft`` is the source of ``draft/handler.py`` (the seeded, compiled draft; none without it).
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
        contract = (contracts or {}).get(number)
        if contract is not None:
            (vdir / "contract.scriptum").write_text(textwrap.dedent(contract))
    if draft is not None:
        (base / "draft").mkdir(exist_ok=True)
        (base / "draft" / "handler.py").write_text(textwrap.dedent(draft))
    return root
