"""Input 12 of issue 11: a critical test that is undecided (errored, skipped, not run) makes the gate
inconclusive even within ``--scriptum-max-errors``, and every reason line names it."""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform

SUITE = """
import pytest


@pytest.fixture
def broken_fixture():
    raise RuntimeError("the test's own fixture broke")


def test_ordinary(scriptum_runner):
    assert scriptum_runner.run({"x": 1}).output["doubled"] == 2


@pytest.mark.scriptum("calc", critical=True)
def test_critical(scriptum_runner, {extra}):
    assert scriptum_runner.run({"x": 2}).output["doubled"] == 4
    {body}
"""
CASES = {
    "errored": ("broken_fixture", "pass", "error"),
    "skipped": ("request", "pytest.skip('not today')", "skipped"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_undecided_critical_test_is_inconclusive_within_the_error_budget(
    pytester: pytest.Pytester, good_platform: Platform, case: str
) -> None:
    extra, body, outcome = CASES[case]
    pytester.makepyfile(test_smoke=SUITE.replace("{extra}", extra).replace("{body}", body))
    args = good_platform.args("--scriptum-max-errors=1", "--scriptum-evidence=ev/b.json", version=2)
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    assert result.ret == 20, out
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive"
    gate = bundle["gate"]
    assert (gate["passed"], gate["failed"], gate["errors"], gate["skipped"]) == (
        1,
        0,
        int(outcome == "error"),
        int(outcome == "skipped"),
    )
    assert gate["critical_undecided"] == ["test_smoke.py::test_critical"]
    assert "critical test undecided (error or not run): test_smoke.py::test_critical" in bundle["reason"]
    if outcome == "error":
        assert "1 error within allowed 1: test_smoke.py::test_critical" in bundle["reason"]
    assert bundle["rollback"] is None
    assert good_platform.active() == 2
    assert good_platform.rollbacks_in_history() == []
