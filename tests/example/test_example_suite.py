"""The invoice-parser example suite, run as a user runs it: v5 passes, v4 fails exactly the regression.

The regression cases are read from the suite's README, so the README and the suite cannot drift
apart silently. Every run here is a real inner pytest session against an embedded server.
"""

from __future__ import annotations

import re

import pytest
from kit import EXAMPLE_SUITE, copy_example_suite, outcomes

# A README row of the v4 table: | `smoke/...::test_x` ... | ... | `/total: expected 12480.0, got 12.0`, ...
_REGRESSION_ROW = re.compile(r"^\| `(smoke/[^`]+::[^`]+)`.*`/total: expected (\S+), got (\S+)`")


def regression_cases() -> dict[str, tuple[str, str]]:
    """``{nodeid: (expected total, v4 total)}`` from the README's table of v4 failures."""
    rows = {}
    for line in (EXAMPLE_SUITE / "README.md").read_text(encoding="utf-8").splitlines():
        match = _REGRESSION_ROW.match(line)
        if match is not None:
            rows[match.group(1)] = (match.group(2), match.group(3))
    assert len(rows) == 3, f"the README's v4 table changed shape: {rows}"
    return rows


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    copy_example_suite(pytester)
    return pytester


def run(suite: pytest.Pytester, *args: str, xdist: bool) -> pytest.RunResult:
    if xdist:  # workers are processes: keep the outer process out of it
        return suite.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-n", "2", *args)
    return suite.runpytest("-p", "no:cacheprovider", "-rA", *args)


def test_v5_passes_every_test_and_the_gate(suite: pytest.Pytester) -> None:
    result = run(suite, "--scriptum-version=5", xdist=False)
    found = outcomes(result)
    assert len(found) >= 20 and set(found.values()) == {"passed"}, found
    for nodeid in regression_cases():
        assert found[nodeid] == "passed"
    result.assert_outcomes(passed=len(found))
    result.stdout.fnmatch_lines(["verdict: PASS - passed *", "rollback: not_needed*"])
    assert result.ret == 0


def test_v4_fails_exactly_the_readme_regression_cases_and_rolls_back(suite: pytest.Pytester) -> None:
    result = run(suite, "--scriptum-version=4", xdist=False)
    cases = regression_cases()
    found = outcomes(result)
    failed = {nodeid for nodeid, outcome in found.items() if outcome == "failed"}
    assert failed == set(cases), found
    assert {outcome for nodeid, outcome in found.items() if nodeid not in cases} == {"passed"}
    result.assert_outcomes(passed=len(found) - len(cases), failed=len(cases))
    for expected, got in cases.values():
        # the diff names the path and both values, under a header with the version and thread id
        result.stdout.fnmatch_lines(
            [
                "smoke expectation failed: invoice-parser v4, thread *",
                f"  /total: expected {expected}*, got {got}",
            ]
        )
    result.stdout.fnmatch_lines(
        [
            "verdict: FAIL - critical test failed: smoke/test_invoice_smoke.py::test_prod_smoke*",
            "rollback: rolled_back_verified - rolled back invoice-parser v4 -> v3*",
        ]
    )
    assert result.ret == 1


def test_v4_over_http_under_xdist_fails_the_same_cases(suite: pytest.Pytester) -> None:
    # Both dimensions at once keep the session count low; each one alone is also covered by
    # test_matchers.py. Rollback off: the rollback is covered above, here the outcomes and exit code.
    result = run(
        suite, "--scriptum-version=4", "--scriptum-transport=http", "--scriptum-rollback=off", xdist=True
    )
    cases = regression_cases()
    found = outcomes(result)
    assert {nodeid for nodeid, outcome in found.items() if outcome == "failed"} == set(cases), found
    assert {outcome for nodeid, outcome in found.items() if nodeid not in cases} == {"passed"}
    result.stdout.fnmatch_lines([f"*{len(cases)} failed, {len(found) - len(cases)} passed*"])
    for expected, got in cases.values():
        result.stdout.fnmatch_lines([f"  /total: expected {expected}*, got {got}"])
    result.stdout.fnmatch_lines(["verdict: FAIL - *", "rollback: disabled*"])
    assert result.ret == 1
