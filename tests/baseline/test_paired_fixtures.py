"""A paired case whose body reads ``smoke_thread`` through a fixture of its own (DESIGN section 8
"Paired baseline": the same checks judge both sides). The fixture is set up once, with the
candidate's result, so the body would judge the candidate's answer on the baseline's side too: a
regression would read "failed on the baseline too", environmental, and never roll back. The case
is the test's own mistake instead (an error naming the fixture)."""

from __future__ import annotations

import pytest
from kit.evidence import read_valid_bundle
from kit.platform import Platform


def test_a_body_reading_the_thread_through_a_fixture_is_not_judged_on_the_baseline(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makeini(
        "[pytest]\nscriptum_script = assist\nscriptum_evidence = evidence/bundle.json\n"
        "scriptum_baseline = paired\n"
    )
    # v4 (the candidate) answers q1 with 3, v3 (the baseline) with 2: a regression.
    pytester.makepyfile(
        test_assist="""
import pytest

@pytest.fixture
def answer(smoke_thread):
    return smoke_thread.output["answer"]

@pytest.mark.scriptum
@pytest.mark.smoke_input({"q": "q1", "n": 1})
def test_q1(answer):
    assert answer == 2
"""
    )
    result = pytester.runpytest_subprocess(*platform.args(version=4), "-p", "no:randomly")
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["*the test's own mistake (not a candidate failure): fixture answer reads*"])
    assert "environmental" not in result.stdout.str()
    (test,) = read_valid_bundle(pytester.path / "evidence" / "bundle.json")["tests"]
    assert test["outcome"] == "error" and "environmental" not in test["error"]
    assert platform.calls("RollbackScript") == 0 and platform.active() == 4
