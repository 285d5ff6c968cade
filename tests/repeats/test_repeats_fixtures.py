"""A repeated case whose body reads ``smoke_thread`` through a fixture of its own (DESIGN section 8
"Repeats": the case passes with at least K passing attempts). Such a fixture is set up once, with
one attempt's result, so calling the body once per attempt would judge that one result N times:
two failing attempts of three passed as "3 of 3". The case is the test's own mistake instead (an
error naming the fixture), never a pass and never a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit.evidence import read_valid_bundle
from kit.platform import Platform
from kit.seeds.flaky import case_input


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_body_reading_the_thread_through_a_fixture_is_never_judged_n_times(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(
        test_flaky=f"""
import pytest

@pytest.fixture
def output(smoke_thread):
    return smoke_thread.output

@pytest.mark.scriptum(repeat=3)
@pytest.mark.smoke_input({case_input(counters, "c", fail_on=(1, 2))})
def test_c(output):
    assert output["ok"]

@pytest.mark.scriptum(repeat=3)
@pytest.mark.smoke_input({case_input(counters, "good")})
def test_direct(smoke_thread):
    assert smoke_thread.output["ok"]
"""
    )
    result = pytester.runpytest_subprocess(*platform.args(version=2), "-p", "no:randomly", "-n", workers)
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*the test's own mistake (not a candidate failure): fixture output reads smoke_thread*",
            "verdict: INCONCLUSIVE - *1 error > allowed 0: test_flaky.py::test_c*",
        ]
    )
    tests = {t["nodeid"]: t for t in read_valid_bundle(pytester.path / "evidence" / "bundle.json")["tests"]}
    assert tests["test_flaky.py::test_c"]["outcome"] == "error"
    assert "take smoke_thread as the test's own argument" in tests["test_flaky.py::test_c"]["error"]
    assert tests["test_flaky.py::test_direct"]["outcome"] == "passed"
    assert platform.calls("RollbackScript") == 0 and platform.active() == 2
