"""Repeats under pytest-rerunfailures (README "Reruns, timeouts, xfail": any failed attempt makes
the test failed). A rerun runs a fresh set of N attempts; the evidence must keep the set that
failed the case, not the later set that passed, or the bundle and the summary say a failed case
"3 of 3 passed" and count it as pass^N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit.evidence import read_valid_bundle
from kit.platform import Platform
from kit.seeds.flaky import case_input

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_rerun_that_passes_keeps_the_failing_attempt_set_as_evidence(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    # Attempts 1-3 (the first run) fail, attempts 4-6 (the rerun) pass.
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(
        test_flaky=f"""
import pytest

@pytest.mark.scriptum(repeat=3)
@pytest.mark.smoke_input({case_input(counters, "c", fail_on=(1, 2, 3))})
@pytest.mark.smoke_expect({{"ok": True}})
def test_c():
    pass
"""
    )
    result = pytester.runpytest_subprocess(
        *platform.args(version=2), "-p", "no:randomly", "--reruns=1", "-n", workers
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "verdict: FAIL - failed 1 of 1*",
            "repeat: test_flaky.py::test_c failed: 0 of 3 < 3",
            "*pass^N*in 0 of 1",
        ]
    )
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    (test,) = bundle["tests"]
    assert (test["outcome"], test["attempts"]) == ("failed", 2)
    repeat = test["repeat"]
    assert (repeat["passed"], repeat["failed"], repeat["pass_hat_n"]) == (0, 3, 0)
    assert repeat["verdict"] == "0 of 3 < 3"
    # The attempts recorded are the first run's three threads, the ones that failed.
    threads = {t.thread_id: t for t in platform.threads() if t.version == 2}
    assert len(threads) == 6
    recorded = [a["thread_id"] for a in repeat["attempts"]]
    assert set(recorded) <= set(threads)
    assert sorted(json.loads(platform.result(i).output_data)["attempt"] for i in recorded) == [1, 2, 3]
    assert platform.calls("RollbackScript") == 1
