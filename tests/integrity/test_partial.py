"""Input 5 of issue 11 (DESIGN section 3 "Run modes", partial sessions): any deselection or named
node id makes the session partial — recorded in the bundle, the JUnit suite properties and the
summary; a rollback mode that comes from the default acts as dry-run; an explicit ``auto`` (CLI or
ini) rolls back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit.evidence import read_junit
from kit.platform import Platform
from kit.seeds.doubles import smoke_suite

from pytest_scriptum.evidence import validate_bundle


def _bundle(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "ev" / "b.json").read_text())
    validate_bundle(data)
    return data


def _no_cache(args: list[str]) -> list[str]:
    """The platform's args without ``-p no:cacheprovider`` (``--lf`` needs the cache)."""
    i = args.index("no:cacheprovider")
    return args[: i - 1] + args[i + 1 :]


def test_one_test_selected_on_a_failing_candidate_only_dry_runs_by_default(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(3))
    args = platform.args(
        "--scriptum-evidence=ev/b.json", "--junitxml=ev/j.xml", "-k", "test_double_1", version=2
    )
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    assert result.ret == 1, out
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "fail"
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"]) == (0, 1)
    assert bundle["rollback"]["status"] == "dry_run"
    assert "the default rollback mode acts as dry-run" in bundle["rollback"]["message"]
    selection = bundle["selection"]
    assert (selection["partial"], selection["selected"], selection["deselected"]) == (True, 1, 2)
    assert "-k" in selection["args"] and "test_double_1" in selection["args"]
    props = read_junit(pytester.path / "ev" / "j.xml").suite_properties
    assert json.loads(props["scriptum.selection"]) == selection
    result.stdout.fnmatch_lines(["selection: partial: 1 selected, 2 deselected (args: *-k test_double_1*)"])
    assert platform.active() == 2
    assert platform.calls("RollbackScript") == 0


@pytest.mark.parametrize("where", ["cli", "ini"])
def test_an_explicit_auto_rolls_back_a_partial_session(
    pytester: pytest.Pytester, fresh_platform: Platform, where: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(3))
    extra = ["--scriptum-rollback=auto"] if where == "cli" else []
    if where == "ini":
        pytester.makeini("[pytest]\nscriptum_rollback = auto\n")
    args = fresh_platform.args("--scriptum-evidence=ev/b.json", "-k", "test_double_1", *extra, version=2)
    result = pytester.runpytest(*args)
    assert result.ret == 1, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["selection"]["partial"] is True
    assert bundle["rollback"]["status"] == "rolled_back_verified"
    assert fresh_platform.active() == 1
    assert len(fresh_platform.rollbacks_in_history()) == 1


@pytest.mark.parametrize(
    "narrowing",
    [
        ["-k", "test_double_0 or test_double_2"],
        ["--deselect", "test_smoke.py::test_double_1"],
        ["test_smoke.py::test_double_0", "test_smoke.py::test_double_2"],
    ],
    ids=["-k", "--deselect", "node-ids"],
)
def test_a_passing_partial_session_says_it_was_partial(
    pytester: pytest.Pytester, good_platform: Platform, narrowing: list[str]
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(3))
    result = pytester.runpytest(*good_platform.args("--scriptum-evidence=ev/b.json", *narrowing, version=2))
    assert result.ret == 0, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "pass"
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"]) == (2, 0)
    assert bundle["selection"]["partial"] is True
    assert bundle["selection"]["selected"] == 2
    result.stdout.fnmatch_lines(["selection: partial: 2 selected*"])


def test_last_failed_on_a_good_candidate_leaves_a_trace(
    pytester: pytest.Pytester, good_platform: Platform
) -> None:
    # First run: one test body fails (the test's own bug), then it is fixed and only it re-runs (--lf).
    buggy = (
        smoke_suite(3)
        + "\n\ndef test_body(scriptum_runner):\n"
        + "    assert scriptum_runner.run({'x': 1}).output['doubled'] == 3\n"
    )
    pytester.makepyfile(test_smoke=buggy)
    first = pytester.runpytest(*_no_cache(good_platform.args("--scriptum-rollback=off", version=2)))
    assert first.ret == 1, first.stdout.str()
    pytester.makepyfile(test_smoke=buggy.replace("== 3", "== 2"))
    result = pytester.runpytest(
        *_no_cache(good_platform.args("--scriptum-evidence=ev/b.json", "--lf", version=2))
    )
    assert result.ret == 0, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "pass"
    # --lf skips passed tests while collecting (not a deselection pytest reports): partial, 1 selected
    assert (bundle["selection"]["partial"], bundle["selection"]["selected"]) == (True, 1)
    assert "--lf" in bundle["selection"]["args"]
    assert good_platform.active() == 2


def test_a_full_session_is_not_partial(pytester: pytest.Pytester, good_platform: Platform) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    result = pytester.runpytest(*good_platform.args("--scriptum-evidence=ev/b.json", version=2))
    assert result.ret == 0, result.stdout.str()
    selection = _bundle(pytester)["selection"]
    assert (selection["partial"], selection["selected"], selection["deselected"]) == (False, 2, 0)
    assert "selection:" not in result.stdout.str()
