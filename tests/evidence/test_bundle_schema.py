"""The bundle's shipped JSON Schema: every bundle a session writes validates against it, and
bundles that break it are rejected with the place named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kit.evidence import read_valid_bundle

from pytest_scriptum.evidence import (
    InvalidBundleError,
    Redactor,
    build_bundle,
    bundle_schema,
    read_bundle,
    validate_bundle,
)
from pytest_scriptum.gate import GateConfig, GateCounts, Verdict
from pytest_scriptum.outcome import PinnedRun, SessionOutcome, TestRecord

DESIGN_FIELDS = {
    "schema_version", "script", "candidate_version", "endpoint", "started_at", "finished_at",
    "verdict", "reason", "gate", "preflight", "tests", "rollback",
}


def _minimal(**changes: Any) -> dict[str, Any]:
    verdict = Verdict("pass", "passed 1 of 1", GateCounts(passed=1), GateConfig())
    bundle = build_bundle(SessionOutcome(
        script="calc", candidate_version=2, endpoint="embedded", transport="grpc",
        started_at="2026-01-01T00:00:00.000Z", finished_at="2026-01-01T00:00:01.000Z", verdict=verdict,
        exit_code=0,
        tests=(TestRecord(nodeid="t.py::test", outcome="passed",
                          run=PinnedRun(script="calc", version=2, thread_id="abc", status="COMPLETED",
                                        duration_s=0.1)),),
    ))
    bundle.update(changes)
    return bundle


def test_schema_is_a_valid_draft_2020_12_schema_covering_the_design_fields() -> None:
    schema = bundle_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert DESIGN_FIELDS <= set(schema["required"])
    assert schema["additionalProperties"] is False
    gate = schema["properties"]["gate"]["required"]
    assert {"min_pass_rate", "min_tests", "max_errors", "passed", "failed", "errors", "skipped"} <= set(gate)
    test = set(schema["$defs"]["test"]["required"])
    assert {"nodeid", "outcome", "script", "version", "thread_id", "status", "duration_s", "error"} <= test
    rollback = set(schema["$defs"]["rollback"]["required"])
    assert {"mode", "status", "from_version", "to_version", "incident", "verification"} <= rollback
    verification = set(schema["$defs"]["verification"]["required"])
    assert {"passed", "failed", "errors", "tests"} <= verification


def test_built_bundle_validates() -> None:
    validate_bundle(_minimal())


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"verdict": "maybe"}, "$.verdict"),
        ({"surprise": 1}, "surprise"),
        ({"schema_version": 1}, "$.schema_version"),  # v1 bundles spoke the invented API's statuses
        ({"api": {"descriptors": "guessed", "extensions_used": []}}, "$.api"),
        ({"candidate_version": 0}, "$.candidate_version"),
        ({"started_at": "yesterday"}, "$.started_at"),
    ],
)
def test_invalid_bundles_are_rejected_naming_the_place(change: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidBundleError, match=r"(?s)does not match its schema.*" + "".join(
        f"[{c}]" if c in ".$" else c for c in where
    )):
        validate_bundle(_minimal(**change))


def test_a_test_entry_with_a_wrong_outcome_is_rejected() -> None:
    bundle = copy.deepcopy(_minimal())
    bundle["tests"][0]["outcome"] = "green"
    with pytest.raises(InvalidBundleError, match=r"\$\.tests\[0\]\.outcome"):
        validate_bundle(bundle)


@pytest.mark.parametrize("status", ["SUCCEEDED", "TIMED_OUT", "RUNNING"])
def test_a_test_entry_with_a_status_outside_the_documented_vocabulary_is_rejected(status: str) -> None:
    bundle = copy.deepcopy(_minimal())
    bundle["tests"][0]["status"] = status
    with pytest.raises(InvalidBundleError, match=r"\$\.tests\[0\]\.status"):
        validate_bundle(bundle)


def test_read_bundle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_minimal(verdict="maybe")))
    with pytest.raises(InvalidBundleError, match=r"b\.json"):
        read_bundle(path)
    path.write_text("{not json")
    with pytest.raises(InvalidBundleError, match="not a readable JSON bundle"):
        read_bundle(path)


def test_build_bundle_masks_secrets() -> None:
    verdict = Verdict("fail", "failed 1 of 1", GateCounts(failed=1), GateConfig())
    token = "tok-build-bundle-2b7f0a1c9d"
    outcome = SessionOutcome(
        script="calc", candidate_version=2, endpoint="embedded", transport="grpc",
        started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z", verdict=verdict, exit_code=1,
        tests=(TestRecord(nodeid="t.py::test", outcome="error", run=PinnedRun(script="calc", version=2),
                          error=f"UNAUTHENTICATED: bad token {token}"),),
    )
    bundle = build_bundle(outcome, Redactor([token]))
    assert token not in json.dumps(bundle)
    assert bundle["tests"][0]["error"] == "UNAUTHENTICATED: bad token [redacted]"
    validate_bundle(bundle)


# -- bundles written by real sessions ----------------------------------------------------------


def test_fail_and_rollback_bundles_validate(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=2", "-p", "no:cacheprovider")
    assert result.ret == 1, result.stdout.str()
    candidate = read_valid_bundle(suite.path / "evidence" / "scriptum.json")
    assert candidate["role"] == "candidate" and candidate["verification_of"] is None
    assert candidate["verdict"] == "fail"
    assert candidate["endpoint"] == "embedded"
    assert candidate["api"]["descriptors"] == "reflection"
    assert "Script.activation_history" in candidate["api"]["extensions_used"]
    # marker-declared runs record their thread; the runner-only test has none of its own
    assert {(t["status"], t["error_code"]) for t in candidate["tests"]} == {("COMPLETED", None), (None, None)}
    rollback = candidate["rollback"]
    assert rollback["status"] == "rolled_back_verified"
    assert rollback["cas"] == "native" and rollback["rollback_id"]
    assert (rollback["from_version"], rollback["to_version"]) == (2, 1)
    verification = rollback["verification"]
    assert (verification["verdict"], verification["passed"], verification["failed"]) == ("pass", 3, 0)
    assert {t["version"] for t in verification["tests"]} == {1}

    child = read_valid_bundle(Path(verification["bundle"]))
    assert (child["role"], child["verification_of"], child["candidate_version"]) == ("verification", 2, 1)
    assert child["verdict"] == "pass"
    # The re-run used the parent's embedded server: its evidence must say so, not show an address.
    assert child["endpoint"] == "embedded"


def test_pass_bundle_validates(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=1", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    bundle = read_valid_bundle(suite.path / "evidence" / "scriptum.json")
    assert (bundle["verdict"], bundle["rollback"]["status"]) == ("pass", "not_needed")
    assert len(bundle["tests"]) == 3


def test_inconclusive_preflight_bundle_validates(suite: pytest.Pytester) -> None:
    result = suite.runpytest(
        "--scriptum-version=2", "--scriptum-require-env=NOT_THERE", "-p", "no:cacheprovider"
    )
    assert result.ret == 20, result.stdout.str()
    bundle = read_valid_bundle(suite.path / "evidence" / "scriptum.json")
    assert bundle["verdict"] == "inconclusive" and bundle["rollback"] is None
    assert bundle["preflight"]["ok"] is False and "NOT_THERE" in bundle["preflight"]["failure"]
    assert bundle["tests"] == []
