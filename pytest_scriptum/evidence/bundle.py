"""The JSON evidence bundle (DESIGN.md section 4): one file a reviewer or a postmortem can trust.

Its JSON Schema ships with the package (``bundle.schema.json``, Draft 2020-12);
``validate_bundle`` checks a bundle against it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_scriptum.evidence.redaction import Redactor
from pytest_scriptum.gate import Verdict

__all__ = [
    "SCHEMA_VERSION",
    "InvalidBundleError",
    "build_bundle",
    "bundle_schema",
    "read_bundle",
    "utc_now",
    "validate_bundle",
    "write_bundle",
]

SCHEMA_VERSION = 2  # 2: documented thread statuses, "api", test "error_code", rollback "cas"
_SCHEMA_FILE = "bundle.schema.json"


class InvalidBundleError(ValueError):
    """A bundle that does not match the shipped schema; the message lists every problem and where."""


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
    verification_of: int | None = None,
    api: dict[str, Any] | None = None,
    secrets: Iterable[str | None] = (),
) -> dict[str, Any]:
    """Assemble the bundle; values of env keys are never inputs here, and ``secrets`` are masked."""
    counts, config = verdict.counts, verdict.config
    bundle = {
        "schema_version": SCHEMA_VERSION,
        "role": role,
        "verification_of": verification_of,
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
        "api": api,
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
    redacted: dict[str, Any] = Redactor(secrets).data(bundle)
    return redacted


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a bundle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as out:
        json.dump(bundle, out, indent=2, sort_keys=False)
        out.write("\n")
    os.replace(tmp, path)


@cache
def _schema_text() -> str:
    return resources.files("pytest_scriptum.evidence").joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")


def bundle_schema() -> dict[str, Any]:
    """The bundle's JSON Schema (Draft 2020-12), as shipped in the package (a fresh copy)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def validate_bundle(data: Any) -> None:
    """Raise ``InvalidBundleError`` naming every place where ``data`` breaks the bundle schema."""
    import jsonschema  # only validation needs it; writing a bundle does not

    validator = jsonschema.Draft202012Validator(bundle_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        problems = "\n".join(f"  {e.json_path}: {e.message}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise InvalidBundleError(f"evidence bundle does not match its schema:\n{problems}{more}")


def read_bundle(path: Path) -> dict[str, Any]:
    """Load a bundle file and validate it; the error names the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidBundleError(f"{path}: not a readable JSON bundle: {exc}") from None
    try:
        validate_bundle(data)
    except InvalidBundleError as exc:
        raise InvalidBundleError(f"{path}: {exc}") from None
    if not isinstance(data, dict):  # the schema already says so; this narrows the type
        raise InvalidBundleError(f"{path}: a bundle is a JSON object")
    return data
