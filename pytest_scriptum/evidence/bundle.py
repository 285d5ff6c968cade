"""The JSON evidence bundle (DESIGN.md section 4): one file a reviewer or a postmortem can trust.

Its JSON Schema ships with the package (``bundle.schema.json``, Draft 2020-12);
``validate_bundle`` checks a bundle against it. Reading and validating a bundle needs the
standard library and jsonschema only: nothing of the plugin, grpc or httpx is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_scriptum.evidence._files import write_atomic

if TYPE_CHECKING:
    from pytest_scriptum.evidence.redaction import Redactor
    from pytest_scriptum.outcome import SessionOutcome, TestRecord

__all__ = [
    "SCHEMA_VERSION",
    "InvalidBundleError",
    "baseline_tally",
    "build_bundle",
    "bundle_schema",
    "read_bundle",
    "validate_bundle",
    "write_bundle",
]

SCHEMA_VERSION = 2  # 2: documented thread statuses, "api", test "error_code", rollback "cas"
_SCHEMA_FILE = "bundle.schema.json"


class InvalidBundleError(ValueError):
    """A bundle that does not match the shipped schema; the message lists every problem and where."""


def build_bundle(outcome: SessionOutcome, redactor: Redactor | None = None) -> dict[str, Any]:
    """The bundle of a session's outcome; values of env keys are never in it, and what
    ``redactor`` knows is masked."""
    # Imported here: reading a bundle (``import pytest_scriptum.evidence``) needs none of the writers.
    from pytest_scriptum.evidence.checklists import checklists

    verdict = outcome.verdict
    counts, config = verdict.counts, verdict.config
    preflight = outcome.preflight
    bundle = {
        "schema_version": SCHEMA_VERSION,
        "role": outcome.role,
        "verification_of": outcome.verification_of,
        "script": outcome.script,
        "candidate_version": outcome.candidate_version,
        "endpoint": outcome.endpoint,
        "transport": outcome.transport,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "verdict": verdict.decision,
        "reason": verdict.reason,
        "exit_code": outcome.exit_code,
        "incident": outcome.incident,
        "api": preflight.api.as_dict() if preflight is not None and preflight.api is not None else None,
        "gate": {
            "min_pass_rate": config.min_pass_rate,
            "min_tests": config.min_tests,
            "max_errors": config.max_errors,
            "passed": counts.passed,
            "failed": counts.failed,
            "errors": counts.errors,
            "skipped": counts.skipped,
            "critical_failed": list(counts.critical_failed),
            "critical_undecided": list(counts.critical_undecided),
        },
        "preflight": preflight.as_dict() if preflight is not None else None,
        "tests": [test.as_dict() for test in outcome.tests],
        "rollback": outcome.rollback.as_dict() if outcome.rollback is not None else None,
        "selection": outcome.selection.as_dict() if outcome.selection is not None else None,
        "journal": dict(outcome.journal) if outcome.journal is not None else None,
        "hook_errors": [error.as_dict() for error in outcome.hook_errors],
        "concurrency": dict(outcome.concurrency) if outcome.concurrency is not None else None,
        "shard": dict(outcome.shard) if outcome.shard is not None else None,
        "suite_nodeids": list(outcome.suite_nodeids) if outcome.suite_nodeids is not None else None,
        "baseline": baseline_tally(outcome.tests),
    }
    # DESIGN section 8's fields, only where they say something: a bundle of a session without them
    # reads as it did before them (its readers and the shard merge see no new key).
    if outcome.publish is not None:
        bundle["publish"] = dict(outcome.publish)
    if outcome.env_changes is not None:
        bundle["env_changes"] = dict(outcome.env_changes)
    if outcome.role in ("candidate", "merged"):
        bundle["checklists"] = checklists(outcome)
    if redactor is None:
        return bundle
    redacted: dict[str, Any] = redactor.data(bundle)
    return redacted


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a bundle (permissions: 0666 less the umask)."""
    write_atomic(path, json.dumps(bundle, indent=2, sort_keys=False) + "\n")


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

def baseline_tally(tests: Sequence[TestRecord]) -> dict[str, Any] | None:
    """What the paired baseline showed over a session's (non-advisory) cases, for the bundle's
    ``baseline`` and the summary (DESIGN section 8 "Paired baseline"); None when nothing was paired.

    ``version``: the rollback target; ``cases``: paired cases; ``candidate_failed`` (M): cases
    whose candidate side failed and whose baseline side decided; ``also_failed`` (K): of those,
    the ones the baseline failed too (environmental errors); ``regressions``: candidate failed,
    baseline passed; ``baseline_errors``: cases whose baseline side errored (undecided);
    ``pre_existing``: of the K, those whose baseline failed in the previous bundle too;
    ``text``: "baseline vN also failed K of M".
    """
    paired = [t.baseline for t in tests if t.baseline is not None and not t.advisory]
    if not paired:
        return None
    version = next((b["version"] for b in paired if b.get("version") is not None), None)
    failed = [b for b in paired if b.get("candidate_outcome") == "failed" and b["outcome"] != "error"]
    also = sum(b["outcome"] == "failed" for b in failed)
    return {
        "version": version,
        "cases": len(paired),
        "candidate_failed": len(failed),
        "also_failed": also,
        "regressions": sum(b["outcome"] == "passed" for b in failed),
        "baseline_errors": sum(b["outcome"] == "error" for b in paired),
        "pre_existing": sum(bool(b.get("pre_existing")) for b in paired),
        "text": f"baseline v{version} also failed {also} of {len(failed)}",
    }
