"""Allure evidence: per smoke test attachments, steps, labels and the incident link; the gate and
rollback results; environment.properties and executor.json written once, by the gate's owner."""

from __future__ import annotations

import json

import pytest
from kit.evidence import AllureResults, labels, read_allure

PATTERN = "https://tracker.invalid/browse/{}"
CANDIDATE, VERIFICATION = "calc v2 (candidate)", "calc v1 (verification of v2)"
PROMOTION = "calc v2 (promotion gate)"


def _run(suite: pytest.Pytester, *extra: str, xdist: bool = False) -> AllureResults:
    alluredir = suite.path / "allure"
    args = [
        "--scriptum-version=2",
        "--scriptum-incident=INC-77",
        f"--alluredir={alluredir}",
        "--clean-alluredir",
        f"--allure-link-pattern=issue:{PATTERN}",
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    result = suite.runpytest_subprocess("-n", "2", *args) if xdist else suite.runpytest(*args)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([f"evidence allure: {alluredir}"])
    return read_allure(alluredir)


def _check_smoke_results(allure: AllureResults) -> None:
    failed = allure.one("test_big_sum", CANDIDATE)
    assert failed["status"] == "failed"
    # Allure 3's default tree is built from titlePath: the run's node first; the name has the version.
    assert failed["titlePath"] == [CANDIDATE, "test_calc.py"]
    assert failed["name"] == "test_big_sum · v2"
    assert labels(failed)["scriptum.script"] == "calc"
    assert labels(failed)["scriptum.version"] == "2"
    assert {"type": "issue", "url": PATTERN.format("INC-77"), "name": "incident INC-77"} in failed["links"]
    assert json.loads(allure.attachment(failed, "input")) == {"a": 20, "b": 30}
    expected = json.loads(allure.attachment(failed, "expected"))
    assert expected == {
        "status": "COMPLETED",
        "match": "subset",
        "output": {"sum": 50, "secret_configured": True},
    }
    assert json.loads(allure.attachment(failed, "output")) == {"sum": 49, "secret_configured": True}
    thread = json.loads(allure.attachment(failed, "thread"))
    assert (thread["version"], thread["status"], thread["error_code"]) == (2, "COMPLETED", "")
    assert [(s["path"], s["name"], s["status"]) for s in thread["steps"]] == [
        ("1", "add", "COMPLETED"),
        ("2", "enrich", "COMPLETED"),
    ]
    mismatches = json.loads(allure.attachment(failed, "mismatches"))
    assert [(m["path"], m["expected"], m["actual"]) for m in mismatches] == [("/sum", 50, 49)]
    diff = allure.attachment(failed, "diff")
    assert '-  "sum": 50' in diff and '+  "sum": 49' in diff
    steps = failed["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("step 1 add", "passed"),
        ("step 2 enrich", "passed"),
    ]
    assert all(s["start"] <= s["stop"] for s in steps)
    assert steps[0]["start"] <= steps[1]["start"]
    # placed on the platform's clock: the steps end no later than the test's own result does
    assert steps[-1]["stop"] <= failed["stop"]

    passed = allure.one("test_small_sum", CANDIDATE)
    assert passed["status"] == "passed"
    assert "diff" not in {a["name"] for a in passed["attachments"]}
    runner_only = allure.one("test_runner_only", CANDIDATE)
    assert labels(runner_only)["scriptum.version"] == "2"

    # The verification re-run wrote its own results into the same directory, kept apart.
    verified = allure.one("test_big_sum", VERIFICATION)
    assert verified["status"] == "passed"
    assert verified["titlePath"] == [VERIFICATION, "test_calc.py"]
    assert verified["name"] == "test_big_sum · v1 verification"
    assert labels(verified)["scriptum.version"] == "1"
    assert verified["historyId"] != failed["historyId"]  # not folded into one test as a retry
    assert json.loads(allure.attachment(verified, "output"))["sum"] == 50


def _check_session_results(allure: AllureResults) -> None:
    rollback = allure.one("scriptum rollback calc v2 -> v1", PROMOTION)
    assert rollback["titlePath"] == [PROMOTION, "rollback"]
    assert rollback["status"] == "passed"
    assert labels(rollback)["scriptum.rollback.status"] == "rolled_back_verified"
    assert "rolled_back_verified" in rollback["statusDetails"]["message"]
    assert {"type": "issue", "url": PATTERN.format("INC-77"), "name": "incident INC-77"} in rollback["links"]
    assert json.loads(allure.attachment(rollback, "rollback"))["verification"]["verdict"] == "pass"
    assert "passed" in allure.attachment(rollback, "verification log")
    assert [s["status"] for s in rollback["steps"]] == ["passed", "passed", "passed"]
    assert rollback["steps"][2]["name"].startswith("3. smoke re-run on v1: pass")

    gates = [r for r in allure.results if r["name"].startswith("scriptum gate")]
    assert len(gates) == 1, "the gate result is written once, by the gate's owner only"
    assert (gates[0]["name"], gates[0]["status"]) == ("scriptum gate calc v2: fail", "failed")
    assert json.loads(allure.attachment(gates[0], "gate"))["failed"] == 1

    environment = (allure.directory / "environment.properties").read_text()
    assert environment.splitlines() == [
        "scriptum.script=calc",
        "scriptum.candidate_version=2",
        "scriptum.endpoint=embedded",
        "scriptum.transport=grpc",
        "scriptum.verdict=fail",
        "scriptum.rollback.status=rolled_back_verified",
        "scriptum.rollback.to=1",
        "scriptum.incident=INC-77",
    ]
    executor = json.loads((allure.directory / "executor.json").read_text())
    assert executor["name"] == "pytest-scriptum" and "calc v2" in executor["buildName"]
    assert not list(allure.directory.glob(".*")), "no temporary files left behind"


def test_allure_evidence_single_process(suite: pytest.Pytester) -> None:
    stale = suite.path / "allure" / "stale-result.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    allure = _run(suite)
    assert not stale.exists()  # --clean-alluredir ran before anything of ours was written
    _check_smoke_results(allure)
    _check_session_results(allure)


def test_allure_evidence_under_xdist(suite: pytest.Pytester) -> None:
    allure = _run(suite, xdist=True)
    _check_smoke_results(allure)
    _check_session_results(allure)


def test_passing_gate_writes_no_rollback_result(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=1", "--alluredir=allure", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    allure = read_allure(suite.path / "allure")
    assert not [r for r in allure.results if r["name"].startswith("scriptum rollback")]
    gate = allure.one("scriptum gate calc v1: pass", "calc v1 (promotion gate)")
    assert gate["titlePath"] == ["calc v1 (promotion gate)", "gate"]
    assert gate["status"] == "passed"
    assert "links" not in gate or gate["links"] == []  # no incident given, no link
    assert "scriptum.rollback.status=not_needed" in (allure.directory / "environment.properties").read_text()


def test_no_allure_files_without_alluredir(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=1", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    assert not list(suite.path.rglob("environment.properties"))
    assert "evidence allure" not in result.stdout.str()


def test_works_with_allure_pytest_disabled(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=2", "-p", "no:allure_pytest", "-p", "no:cacheprovider")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["rollback: rolled_back_verified*"])
    assert "Allure evidence" not in result.stdout.str()
