"""After a paired gate rolls back, the verification re-run skips the cases the paired baseline
already saw fail on the rollback target in this session (DESIGN section 8: an environmental
failure never pages anyone). Without this, a suite mixing a regression and an environmental
case rolled back on the regression, then failed its verification on the environmental case
and exited 21 over a failure the gate had already called environmental."""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform

from baseline.test_paired import bundle_of, run, write_ini


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_verification_skips_what_the_baseline_already_saw_fail_on_the_target(
    pytester: pytest.Pytester, platform: Platform, workers: str
) -> None:
    write_ini(pytester)
    pytester.makepyfile(
        test_assist="""
import pytest

@pytest.mark.smoke_input({"q": "q1", "n": 1})
@pytest.mark.smoke_expect({"answer": 2})
def test_regressed():
    pass  # v4 answers 3, v3 answers 2: a regression

@pytest.mark.smoke_input({"q": "q5", "n": 5})
@pytest.mark.smoke_expect({"answer": 999})
def test_fails_everywhere():
    pass  # wrong on v4 and on v3 alike: environmental

@pytest.mark.smoke_input({"q": "q4", "n": 4})
@pytest.mark.smoke_expect({"answer": 8})
def test_good():
    pass
"""
    )
    result = run(pytester, platform, "-n", workers, "--scriptum-max-errors=1")
    assert result.ret == 1, result.stdout.str()  # rolled back and verified, not 21
    result.stdout.fnmatch_lines(["verdict: FAIL - *", "rollback: rolled_back_verified*"])
    bundle = bundle_of(pytester)
    verification = bundle["rollback"]["verification"]
    assert verification["verdict"] == "pass"
    skipped = [n.split("::")[-1] for n in verification["known_failing"]]
    assert skipped == ["test_fails_everywhere"]
    child = json.loads(open(verification["bundle"]).read())
    assert sorted(t["nodeid"].split("::")[-1] for t in child["tests"]) == ["test_good", "test_regressed"]
    assert platform.calls("RollbackScript") == 1 and platform.active() == 3
