"""Issue 12 inputs 4-8: hooks that raise, another actor on the platform, the verification child's
options channel, and where the evidence goes. Whole inner sessions against a dev server of their
own; the outer test reads the platform's state, every evidence file, the summary and the exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import TOKEN, Platform
from kit.evidence import read_allure, read_junit, read_valid_bundle
from kit.interrupts import ACTOR_CONFTEST, FAILING_SUITE, actor_env, fresh_calc


@pytest.fixture
def calc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    plat = fresh_calc(tmp_path)
    for name, value in actor_env(plat).items():
        monkeypatch.setenv(name, value)
    yield plat
    plat.close()


def run(pytester: pytest.Pytester, calc: Platform, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        *calc.args(
            "--scriptum-evidence=evidence/bundle.json",
            "--junitxml=evidence/junit.xml",
            "--scriptum-retries=0",
            *extra,
        )
    )


def bundle_of(pytester: pytest.Pytester) -> dict:
    return read_valid_bundle(pytester.path / "evidence" / "bundle.json")


# -- input 4: hooks that raise -------------------------------------------------------------------

RAISING_HOOKS = """

def pytest_scriptum_gate_evaluated(verdict):
    raise ConnectionError("chat webhook is down")


def pytest_scriptum_before_rollback(plan):
    raise RuntimeError("pager is down")


def pytest_scriptum_after_rollback(result):
    raise RuntimeError("status page is down")
"""


def test_hooks_that_raise_are_recorded_and_block_nothing(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    pytester.makeconftest(ACTOR_CONFTEST + RAISING_HOOKS)
    result = run(pytester, calc)
    assert result.ret == 1, result.stdout.str()  # a verified rollback: the hooks change nothing
    result.stdout.fnmatch_lines(
        [
            "rollback: rolled_back_verified - rolled back calc v2 -> v1*",
            "hook error: pytest_scriptum_gate_evaluated in conftest.py: ConnectionError: chat webhook *",
            "hook error: pytest_scriptum_before_rollback in conftest.py: RuntimeError: pager is down",
            "hook error: pytest_scriptum_after_rollback in conftest.py: RuntimeError: status page is down",
            "exit code: 1",
        ]
    )
    assert calc.active() == 1
    bundle = bundle_of(pytester)
    assert [(e["hook"], e["error"]) for e in bundle["hook_errors"]] == [
        ("pytest_scriptum_gate_evaluated", "ConnectionError: chat webhook is down"),
        ("pytest_scriptum_before_rollback", "RuntimeError: pager is down"),
        ("pytest_scriptum_after_rollback", "RuntimeError: status page is down"),
    ]
    assert bundle["rollback"]["status"] == "rolled_back_verified"
    junit = read_junit(pytester.path / "evidence" / "junit.xml")
    assert junit.suite_properties["scriptum.rollback.status"] == "rolled_back_verified"


def test_only_an_explicit_false_vetoes(pytester: pytest.Pytester, calc: Platform) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    pytester.makeconftest(
        ACTOR_CONFTEST + "\n\ndef pytest_scriptum_before_rollback(plan):\n    return None\n"
    )
    pytester.makepyfile(
        freeze="def pytest_scriptum_before_rollback(plan):\n    return False\n",
        broken="def pytest_scriptum_before_rollback(plan):\n    raise KeyError('freeze calendar')\n",
    )
    pytester.syspathinsert()
    result = run(pytester, calc, "-p", "freeze", "-p", "broken")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "rollback: vetoed - rollback vetoed: a pytest_scriptum_before_rollback hook returned False",
            "hook error: pytest_scriptum_before_rollback in broken: KeyError: 'freeze calendar'",
        ]
    )
    assert calc.active() == 2 and calc.calls("RollbackScript") == 0
    assert bundle_of(pytester)["rollback"]["status"] == "vetoed"


# -- input 6: another actor ----------------------------------------------------------------------

def test_another_actor_activating_a_version_mid_session_is_a_conflict(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    # An operator activates v3 (never gated) while the gate on v2 runs.
    pytester.makeconftest(
        ACTOR_CONFTEST + "\n\ndef pytest_scriptum_gate_evaluated(verdict):\n"
        "    activate(3, incident_id='OPS-9')\n"
    )
    result = run(pytester, calc)
    assert result.ret == 21, result.stdout.str()
    out = result.stdout.str()
    assert "rollback: conflict - someone else changed the active version during this session" in out
    assert "v2 was active at preflight; now v3: v3 became active by a rollback from v2 at " in out
    assert "incident 'OPS-9'" in out and "v3 was not gated here" in out
    assert "ACTION REQUIRED, run by hand: dodil scriptum version rollback calc --to 1" in out
    assert calc.active() == 3  # not fought
    assert calc.calls("RollbackScript") == 1  # the operator's only
    bundle = bundle_of(pytester)
    assert (bundle["rollback"]["status"], bundle["rollback"]["active_after"], bundle["exit_code"]) == (
        "conflict",
        3,
        21,
    )


def test_another_gate_that_rolled_the_same_candidate_back_is_verified_not_a_conflict(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    pytester.makeconftest(
        ACTOR_CONFTEST + "\n\ndef pytest_scriptum_gate_evaluated(verdict):\n"
        "    activate(1, expected_active_version=2, reason='the other gate', rollback_id='other-gate')\n"
    )
    result = run(pytester, calc)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["rollback: already_rolled_back - another actor already rolled calc back from v2 to v1 (*"
         "the smoke re-run on v1 passed*"]
    )
    assert calc.active() == 1
    assert [e.rollback_id for e in calc.rollbacks_in_history()] == ["other-gate"]
    bundle = bundle_of(pytester)
    assert bundle["rollback"]["status"] == "already_rolled_back"
    assert bundle["rollback"]["verification"]["verdict"] == "pass"
    assert bundle["journal"] is None  # this session sent no rollback


# -- input 5: the verification child's options travel as data ------------------------------------

def test_the_verification_child_gets_its_options_as_data(pytester: pytest.Pytester, calc: Platform) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    incident = "INC-1 --scriptum-transport http --scriptum-http-url http://127.0.0.1:9"
    result = run(pytester, calc, f"--scriptum-incident={incident}")
    assert result.ret == 1, result.stdout.str()
    options_file = pytester.path / "evidence" / "verification-v1.options.json"
    options = json.loads(options_file.read_text())
    assert options["incident"] == incident and options["transport"] == "grpc"
    assert TOKEN not in options_file.read_text()
    child = read_valid_bundle(pytester.path / "evidence" / "verification-v1.json")
    assert (child["incident"], child["transport"], child["candidate_version"]) == (incident, "grpc", 1)
    assert TOKEN not in (pytester.path / "evidence" / "verification-v1.log").read_text()


# -- inputs 7 and 8: evidence in one place ------------------------------------------------------

def test_clean_alluredir_applies_once(pytester: pytest.Pytester, calc: Platform) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    pytester.makeini("[pytest]\naddopts = --alluredir=allure-results --clean-alluredir\n")
    results = pytester.mkdir("allure-results")
    (results / "stale-result.json").write_text("{}")  # an earlier run's: the parent cleans it
    result = run(pytester, calc)
    assert result.ret == 1, result.stdout.str()
    assert not (results / "stale-result.json").exists()
    allure = read_allure(results)
    # The candidate's three failures survive the verification re-run, which adds its three passes.
    tests = [r for r in allure.results if r["name"].startswith("test_")]
    statuses = sorted(r["status"] for r in tests)
    assert statuses == ["failed"] * 3 + ["passed"] * 3, allure.names()


def test_evidence_in_one_place_when_the_ini_is_in_a_subdirectory(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    smoke = pytester.mkdir("smoke")
    (smoke / "pytest.ini").write_text("[pytest]\n")
    (smoke / "test_smoke.py").write_text(FAILING_SUITE)
    # From the repository root, as CI runs it: relative paths are relative to here.
    result = run(pytester, calc, "smoke")
    assert result.ret == 1, result.stdout.str()
    evidence = pytester.path / "evidence"
    assert (evidence / "junit.verification-v1.xml").is_file()
    assert not (smoke / "evidence").exists()
    bundle = bundle_of(pytester)
    verification = bundle["rollback"]["verification"]
    named = [verification["log"], verification["junit"], verification["bundle"], bundle["journal"]["path"]]
    for path in named:
        assert Path(path).is_file(), path
        assert Path(path).parent == evidence, path
    read_junit(evidence / "junit.verification-v1.xml")


def test_without_scriptum_evidence_the_files_go_under_the_rootdir(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    result = pytester.runpytest(*calc.args("--scriptum-retries=0"))
    assert result.ret == 1, result.stdout.str()
    default = pytester.path / "scriptum-evidence"
    assert (default / "verification-v1.json").is_file() and (default / "verification-v1.log").is_file()
    (journal,) = default.glob("rollback-journal.calc.*.json")
    assert json.loads(journal.read_text())["state"] == "closed"
    result.stdout.fnmatch_lines([f"verification log: {default / 'verification-v1.log'}"])
