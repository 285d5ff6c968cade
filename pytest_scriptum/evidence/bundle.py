"""The JSON evidence bundle (DESIGN.md section 4): one file a reviewer or a postmortem can trust."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_scriptum.gate import Verdict

__all__ = ["SCHEMA_VERSION", "build_bundle", "utc_now", "write_bundle"]

SCHEMA_VERSION = 1


def utc_now() -> str:
    """An ISO-8601 UTC timestamp."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_bundle(
    *,
    role: str,
    script: str | None,
    candidate_version: int | None,
    endpoint: str | None,
    transport: str,
    started_at: str,
    finished_at: str,
    verdict: Verdict,
    exit_code: int,
    preflight: dict[str, Any] | None,
    tests: Sequence[dict[str, Any]],
    rollback: dict[str, Any] | None,
    incident: str | None,
) -> dict[str, Any]:
    """Assemble the bundle; values of env keys and the token are never inputs here."""
    counts, config = verdict.counts, verdict.config
    return {
        "schema_version": SCHEMA_VERSION,
        "role": role,
        "script": script,
        "candidate_version": candidate_version,
        "endpoint": endpoint,
        "transport": transport,
        "started_at": started_at,
        "finished_at": finished_at,
        "verdict": verdict.decision,
        "reason": verdict.reason,
        "exit_code": exit_code,
        "incident": incident,
        "gate": {
            "min_pass_rate": config.min_pass_rate,
            "min_tests": config.min_tests,
            "max_errors": config.max_errors,
            "passed": counts.passed,
            "failed": counts.failed,
            "errors": counts.errors,
            "skipped": counts.skipped,
            "critical_failed": list(counts.critical_failed),
        },
        "preflight": preflight,
        "tests": list(tests),
        "rollback": rollback,
    }


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a bundle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as out:
        json.dump(bundle, out, indent=2, sort_keys=False)
        out.write("\n")
    os.replace(tmp, path)
